"""``tlacacoca.middleware`` on Tessera's guard (see each submodule for the differences)."""

from .access_control import AccessControl, AccessControlConfig
from .base import DenialReason, Middleware, MiddlewareChain, MiddlewareResult
from .certificate_auth import (
    CertificateAuth,
    CertificateAuthConfig,
    CertificateAuthPathRule,
)
from .rate_limit import RateLimitConfig, RateLimiter, TokenBucket

__all__ = [
    "DenialReason",
    "MiddlewareResult",
    "Middleware",
    "MiddlewareChain",
    "TokenBucket",
    "RateLimiter",
    "RateLimitConfig",
    "AccessControl",
    "AccessControlConfig",
    "CertificateAuth",
    "CertificateAuthConfig",
    "CertificateAuthPathRule",
]
