"""``tlacacoca.middleware.rate_limit``: per-client rate limits.

Differences from tlacacoca 0.3.0:

- The limit runs in Rust (GCRA, equivalent to a token bucket of
  ``capacity`` refilled at ``refill_rate`` per second) and tracks at most
  ``max_clients`` clients (default 65,536), so memory stays bounded with no
  cleanup task; ``start()`` and ``stop()`` are kept and do nothing.
- Clients are keyed by address with IPv6 grouped by /64 (one host rotating
  addresses in its /64 is one client), and IPv4-mapped IPv6 is IPv4.
- A denial's ``retry_after`` is the real wait (whole seconds, at least 1);
  the configured ``retry_after`` is not used.
- There is no ``buckets`` dictionary; ``tracked_clients`` counts them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .base import _GuardMiddleware


@dataclass
class RateLimitConfig:
    """``capacity`` (burst) requests, refilled at ``refill_rate`` per second."""

    capacity: int = 10
    refill_rate: float = 1.0
    retry_after: int = 30
    max_clients: int = 65_536


class TokenBucket:
    """One client's token bucket (kept for code that uses it directly)."""

    def __init__(self, capacity: int, refill_rate: float):
        self.capacity = capacity
        self.refill_rate = refill_rate
        self.tokens = float(capacity)
        self.last_update = time.monotonic()

    def consume(self, tokens: int = 1) -> bool:
        """Takes ``tokens`` if the bucket holds them."""
        now = time.monotonic()
        elapsed = now - self.last_update
        self.tokens = min(self.capacity, self.tokens + elapsed * self.refill_rate)
        self.last_update = now
        if self.tokens >= tokens:
            self.tokens -= tokens
            return True
        return False


class RateLimiter(_GuardMiddleware):
    """Per-client rate limiting."""

    _STAGE = 1

    _CONFIG = RateLimitConfig

    def __init__(self, config: RateLimitConfig | None = None):
        super().__init__(config)

    def _settings(self) -> dict:
        return {
            "rate": float(self.config.refill_rate),
            "burst": int(self.config.capacity),
            "max_clients": int(self.config.max_clients),
        }

    def start(self) -> None:
        """Nothing to start: memory is bounded without a cleanup task."""

    async def stop(self) -> None:
        """Nothing to stop."""

    @property
    def tracked_clients(self) -> int:
        """Clients tracked now (at most ``config.max_clients``)."""
        return self._chain.tracked_clients


__all__ = ["RateLimitConfig", "RateLimiter", "TokenBucket"]
