"""tlacacoca 0.3.0's middleware, certificate helpers and log processor on
Tessera: change ``tlacacoca`` to ``tessera.compat.tlacacoca`` in the import.

Provided, with tlacacoca's names, signatures and module layout:

- ``middleware``: ``MiddlewareChain``, ``MiddlewareResult``, ``DenialReason``,
  ``Middleware``, ``RateLimiter`` / ``RateLimitConfig`` / ``TokenBucket``,
  ``AccessControl`` / ``AccessControlConfig``, ``CertificateAuth`` /
  ``CertificateAuthConfig`` / ``CertificateAuthPathRule``;
- ``security.certificates``: ``generate_self_signed_cert``,
  ``load_certificate``, ``get_certificate_fingerprint``,
  ``get_certificate_fingerprint_from_path``;
- ``logging``: ``hash_ip_processor`` (keyed).

Each submodule says where it refuses what tlacacoca accepts. Not provided
yet: the TLS contexts, ``TOFUDatabase``, the PROXY protocol parser and the
pyOpenSSL helpers.
"""

from .logging import hash_ip_processor
from .middleware import (
    AccessControl,
    AccessControlConfig,
    CertificateAuth,
    CertificateAuthConfig,
    CertificateAuthPathRule,
    DenialReason,
    Middleware,
    MiddlewareChain,
    MiddlewareResult,
    RateLimitConfig,
    RateLimiter,
    TokenBucket,
)
from .security import (
    generate_self_signed_cert,
    get_certificate_fingerprint,
    get_certificate_fingerprint_from_path,
    load_certificate,
)

__all__ = [
    "AccessControl",
    "AccessControlConfig",
    "CertificateAuth",
    "CertificateAuthConfig",
    "CertificateAuthPathRule",
    "DenialReason",
    "Middleware",
    "MiddlewareChain",
    "MiddlewareResult",
    "RateLimitConfig",
    "RateLimiter",
    "TokenBucket",
    "generate_self_signed_cert",
    "get_certificate_fingerprint",
    "get_certificate_fingerprint_from_path",
    "hash_ip_processor",
    "load_certificate",
]
