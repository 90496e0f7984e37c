"""Capability tokens for service-to-service calls: an issuer mints a
Biscuit token bound to a holder's key, the holder signs each request with
that key (proof of possession), the service authenticates the request and
checks a Datalog policy; jobs carry an issuer signature.

The wire formats are trust-core 0.1.0's, so either side can be trust-core;
its weaknesses are refused (see "Capability tokens" in the repository README).
Every refusal raises a :class:`TrustError` subclass naming the check.

>>> import time
>>> from tessera import trust
>>> issuer, holder = trust.SecretKey.generate(), trust.SecretKey.generate()
>>> token = trust.mint(issuer, holder.public.hex, "worker-1",
...                    expires_at=time.time() + 3600, facts={"op": ["read"]})
>>> proof = trust.prove(holder, token, "GET", "/jobs")
>>> verifier = trust.Verifier(issuer.public)
>>> who = verifier.authenticate(proof, "GET", "/jobs")
>>> who.holder_id
'worker-1'
>>> verifier.check_policy(who, 'allow if op("read")')
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from tessera import _framing, _tessera
from tessera._tessera import (
    Authenticated,
    ConfigInvalid,
    Expired,
    IdentityInvalid,
    InvalidInput,
    JobInvalid,
    LimitsExceeded,
    MalformedRequest,
    PolicyDenied,
    PopFailed,
    Proof,
    PublicKey,
    Replayed,
    Revoked,
    SecretKey,
    SignerError,
    Stale,
    TokenInvalid,
    TrustError,
    Unavailable,
    Verifier,
    prove,
)


def mint(
    issuer: SecretKey | str,
    worker_public: str,
    holder_id: str,
    *,
    expires_at: float,
    facts: Mapping[str, Iterable[str]] | None = None,
    revocation_id: str | None = None,
    require_pop_v2: bool = False,
) -> str:
    """Mints a token for the holder key ``worker_public`` (hex).

    ``facts`` maps predicate names to values, each written as a fact
    ``name("value")`` in the mapping's order; ``revocation_id`` is random
    when omitted; ``expires_at`` is UNIX seconds. With ``require_pop_v2``
    verifiers refuse v1 proofs for this token.
    """
    pairs = None
    if facts is not None:
        if isinstance(facts, (str, bytes)) or not isinstance(facts, Mapping):
            raise TypeError("facts must map predicate names to lists of values")
        pairs = []
        for name, values in facts.items():
            if isinstance(values, (str, bytes)):
                raise TypeError(f"facts[{name!r}] must be a list of strings, not a string")
            pairs.append((name, list(values)))
    return _tessera.mint(
        issuer,
        worker_public,
        holder_id,
        expires_at=expires_at,
        facts=pairs,
        revocation_id=revocation_id,
        require_pop_v2=require_pop_v2,
    )


def _job_text(job: Mapping[str, Any] | str) -> str:
    if isinstance(job, str):
        return job
    if not isinstance(job, Mapping):
        raise TypeError("a job is a mapping or its JSON text")
    return json.dumps(dict(job), ensure_ascii=False)


def job_message(job: Mapping[str, Any] | str, worker_id: str, *, format: str = "v1") -> str:
    """The exact text a job signature covers (the ``sig`` field left out)."""
    return _tessera.job_message(_job_text(job), worker_id, format=format)


def sign_job(
    issuer: SecretKey | str, job: Mapping[str, Any] | str, worker_id: str, *, format: str = "v1"
) -> str:
    """Signs ``job`` for ``worker_id``: 128 hex digits for its ``sig`` field.

    ``format="v2"`` signs a domain-separated message (``tessera-job/2``);
    ``"v1"`` is trust-core's.
    """
    return _tessera.sign_job(issuer, _job_text(job), worker_id, format=format)


def verify_job(
    issuer: PublicKey | str, job: Mapping[str, Any] | str, worker_id: str, *, format: str = "v1"
) -> None:
    """Checks the ``sig`` field of ``job``; raises :class:`JobInvalid`."""
    _tessera.verify_job(issuer, _job_text(job), worker_id, format=format)


class SignerClient:
    """A client of the signer sidecar (``tessera trust signer``, or
    trust-core's), which holds the issuer key so this process never does.

    ``address`` is a Unix socket path or a ``(host, port)`` pair. Every
    socket operation times out after ``timeout`` seconds. Replies that are
    not ``ok`` raise :class:`SignerError` with the signer's error kind.
    Use it as a context manager, or call :meth:`close`.
    """

    #: Frames larger than this are refused both ways (the signer's own cap).
    MAX_FRAME = 64 * 1024

    def __init__(self, address: str | tuple[str, int], *, timeout: float = 10.0) -> None:
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.settimeout(timeout)
        try:
            self._socket.connect(address)
        except OSError as exc:
            self._socket.close()
            raise SignerError(f"wire: cannot connect to the signer at {address!r}: {exc}") from exc

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        _framing.send_frame(self._socket, request, self.MAX_FRAME)
        reply = _framing.recv_frame(self._socket, self.MAX_FRAME)
        if reply.get("ok") is not True:
            kind = reply.get("error", "no error kind")
            detail = reply.get("detail")
            raise SignerError(f"signer: {kind}" + (f": {detail}" if detail else ""))
        return reply

    def public_key(self) -> str:
        """The issuer's public key (hex)."""
        return str(self._call({"op": "public_key"})["public_key"])

    def mint(
        self,
        worker_public: str,
        holder_id: str,
        *,
        expires_at: float,
        facts: Mapping[str, Iterable[str]] | None = None,
        revocation_id: str | None = None,
    ) -> str:
        """Has the signer mint a token (see :func:`mint`)."""
        request: dict[str, Any] = {
            "op": "mint",
            "worker_public": worker_public,
            "holder_id": holder_id,
            "expires_at": expires_at,
        }
        if facts is not None:
            request["facts"] = {name: list(values) for name, values in facts.items()}
        if revocation_id is not None:
            request["revocation_id"] = revocation_id
        return str(self._call(request)["token"])

    def sign_job(self, job: Mapping[str, Any], worker_id: str, *, format: str = "v1") -> str:
        """Has the signer sign ``job`` for ``worker_id``; the hex signature."""
        formats = {"v1": 1, "v2": 2}
        if format not in formats:
            raise ValueError(f'format must be "v1" or "v2", not {format!r}')
        request: dict[str, Any] = {"op": "sign_job", "job": dict(job), "worker_id": worker_id}
        if format == "v2":
            request["format"] = formats[format]  # absent means v1, for trust-core's signers too
        return str(self._call(request)["signature"])

    def close(self) -> None:
        """Closes the connection."""
        self._socket.close()

    def __enter__(self) -> SignerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "Authenticated",
    "ConfigInvalid",
    "Expired",
    "IdentityInvalid",
    "InvalidInput",
    "JobInvalid",
    "LimitsExceeded",
    "MalformedRequest",
    "PolicyDenied",
    "PopFailed",
    "Proof",
    "PublicKey",
    "Replayed",
    "Revoked",
    "SecretKey",
    "SignerClient",
    "SignerError",
    "Stale",
    "TokenInvalid",
    "TrustError",
    "Unavailable",
    "Verifier",
    "job_message",
    "mint",
    "prove",
    "sign_job",
    "verify_job",
]
