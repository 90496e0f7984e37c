"""``tlacacoca.middleware.base``: denial reasons, results, and the chain.

Differences from tlacacoca 0.3.0:

- A :class:`MiddlewareChain` of this package's middlewares, in the order
  access control, rate limit, certificate rules (any of them may be left
  out), runs as one native decision; any other mix runs each middleware in
  turn, as tlacacoca does. The chain reads its list once, when built.
- :class:`MiddlewareResult` is frozen (results are shared between calls).
- On such a chain, and on each of this package's middlewares,
  ``process_request`` returns a :class:`tessera.guard.Ready` awaitable
  rather than a coroutine: awaiting it gives the result without running a
  coroutine. It has a coroutine's methods and counts as a
  ``collections.abc.Coroutine`` (``asyncio.create_task`` takes it), but
  ``inspect.iscoroutinefunction(chain.process_request)`` is false. A
  subclass that overrides ``process_request`` keeps its own method (and is
  then run in turn rather than fused).
- A rate-limit denial's ``retry_after`` is the real wait in whole seconds
  (at least 1), not the configured constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tessera import guard


class DenialReason:
    """Why a middleware refused a request (subclass it to add reasons)."""

    RATE_LIMIT = "rate_limit"
    ACCESS_DENIED = "access_denied"
    CERT_REQUIRED = "cert_required"
    CERT_NOT_AUTHORIZED = "cert_not_authorized"


@dataclass(frozen=True)
class MiddlewareResult:
    """Whether a request may proceed; a denial has a reason, a rate limit a wait."""

    allowed: bool
    denial_reason: str | None = None
    retry_after: int | None = None


class Middleware(Protocol):
    """Anything with tlacacoca's ``process_request`` coroutine."""

    async def process_request(
        self,
        request_url: str,
        client_ip: str,
        client_cert_fingerprint: str | None = None,
    ) -> MiddlewareResult: ...


_ALLOWED = MiddlewareResult(allowed=True)
_DENIED = {
    "access_denied": MiddlewareResult(False, DenialReason.ACCESS_DENIED),
    "cert_required": MiddlewareResult(False, DenialReason.CERT_REQUIRED),
    "cert_not_authorized": MiddlewareResult(False, DenialReason.CERT_NOT_AUTHORIZED),
    "cert_not_valid": MiddlewareResult(False, "cert_not_valid"),
}
_RATE_LIMITED: dict[int, MiddlewareResult] = {}
_MAX_CACHED_WAITS = 4096


def _result(decision: guard.Decision) -> MiddlewareResult:
    """The shared result for a native decision."""
    if decision.allowed:
        return _ALLOWED
    reason = decision.reason
    if reason != "rate_limited":
        return _DENIED[reason]
    wait = decision.retry_after_secs
    result = _RATE_LIMITED.get(wait)
    if result is None:
        result = MiddlewareResult(False, DenialReason.RATE_LIMIT, wait)
        if len(_RATE_LIMITED) < _MAX_CACHED_WAITS:
            _RATE_LIMITED[wait] = result
    return result


class _GuardMiddleware:
    """A middleware backed by a native chain: a stage of ``_STAGE`` order,
    configured by a ``_CONFIG`` dataclass."""

    _STAGE = 0
    _CONFIG: type = type(None)
    _chain: guard.Chain

    def __init__(self, config=None):
        self.config = config or self._CONFIG()
        try:
            self._chain = guard.Chain(**self._settings())
        except guard.GuardError as error:
            raise ValueError(str(error)) from error
        if _is_native(self):
            self.process_request = guard.AsyncCheck(self._chain, _result).process_request

    def _settings(self) -> dict:
        raise NotImplementedError

    async def process_request(
        self,
        request_url: str,
        client_ip: str,
        client_cert_fingerprint: str | None = None,
    ) -> MiddlewareResult:
        # What the native AsyncCheck set in __init__ does, for callers that
        # reach the class's method (``super().process_request`` in a subclass).
        return _result(self._chain.check_request(request_url, client_ip, client_cert_fingerprint))


def _is_native(middleware) -> bool:
    """Whether ``middleware`` is one of ours, its ``process_request`` not overridden."""
    return (
        isinstance(middleware, _GuardMiddleware)
        and type(middleware).process_request is _GuardMiddleware.process_request
    )


def _fuse(middlewares: list) -> guard.Chain | None:
    """One native chain doing what ``middlewares`` do in turn, when their
    order is the native one (ACL, rate limit, certificate rules)."""
    if not middlewares or not all(_is_native(m) for m in middlewares):
        return None
    stages = [m._STAGE for m in middlewares]
    if stages != sorted(set(stages)):
        return None
    settings: dict = {}
    for middleware in middlewares:
        settings.update(middleware._settings())
    return guard.Chain(**settings)


class MiddlewareChain:
    """Runs middlewares in order; the first denial wins."""

    def __init__(self, middlewares: list[Middleware]):
        self.middlewares = middlewares
        self._fused = _fuse(list(middlewares))
        if self._fused is not None and type(self).process_request is MiddlewareChain.process_request:
            # Decided natively and answered with an awaitable already done.
            self.process_request = guard.AsyncCheck(self._fused, _result).process_request

    async def process_request(
        self,
        request_url: str,
        client_ip: str,
        client_cert_fingerprint: str | None = None,
    ) -> MiddlewareResult:
        fused = self._fused
        if fused is not None:
            decision = fused.check_request(request_url, client_ip, client_cert_fingerprint)
            return _ALLOWED if decision.allowed else _result(decision)
        for middleware in self.middlewares:
            result = await middleware.process_request(
                request_url, client_ip, client_cert_fingerprint
            )
            if not result.allowed:
                return result
        return _ALLOWED


__all__ = ["DenialReason", "Middleware", "MiddlewareChain", "MiddlewareResult"]
