"""tlacacoca 0.3.0's middleware, certificate helpers and log processor on
Tessera: change ``tlacacoca`` to ``tessera.compat.tlacacoca`` in the import.

Provided, with tlacacoca's names, signatures and module layout:

- ``middleware``: ``MiddlewareChain``, ``MiddlewareResult``, ``DenialReason``,
  ``Middleware``, ``RateLimiter`` / ``RateLimitConfig`` / ``TokenBucket``,
  ``AccessControl`` / ``AccessControlConfig``, ``CertificateAuth`` /
  ``CertificateAuthConfig`` / ``CertificateAuthPathRule``;
- ``security.certificates``: ``generate_self_signed_cert``,
  ``load_certificate``, ``get_certificate_fingerprint``,
  ``get_certificate_fingerprint_from_path``, ``get_certificate_info``,
  ``is_certificate_expired``, ``is_certificate_valid_for_hostname``,
  ``validate_certificate_file``;
- ``security.tls``: ``create_client_context``, ``create_server_context``;
- ``security.tofu``: ``TOFUDatabase``, ``CertificateChangedError``;
- ``security.proxy_protocol``: ``parse_proxy_header``, ``ProxyHeader``,
  ``ProxyProtocolConfig``, ``ProxyProtocolError``,
  ``looks_like_proxy_header``, ``parse_trusted_source``;
- ``logging``: ``configure_logging``, ``get_logger`` (structlog, as
  tlacacoca sets it up) and ``hash_ip_processor`` (keyed).

Each submodule says where it refuses what tlacacoca accepts. Not provided
yet: the pyOpenSSL helpers and ``TLSServerProtocol``.
"""

from .logging import configure_logging, get_logger, hash_ip_processor
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
    CertificateChangedError,
    ProxyHeader,
    ProxyProtocolConfig,
    ProxyProtocolError,
    TOFUDatabase,
    create_client_context,
    create_server_context,
    generate_self_signed_cert,
    get_certificate_fingerprint,
    get_certificate_fingerprint_from_path,
    get_certificate_info,
    is_certificate_expired,
    is_certificate_valid_for_hostname,
    load_certificate,
    parse_proxy_header,
    validate_certificate_file,
)

__all__ = [
    "AccessControl",
    "CertificateChangedError",
    "ProxyHeader",
    "ProxyProtocolConfig",
    "ProxyProtocolError",
    "TOFUDatabase",
    "create_client_context",
    "create_server_context",
    "AccessControlConfig",
    "configure_logging",
    "get_logger",
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
    "get_certificate_info",
    "hash_ip_processor",
    "is_certificate_expired",
    "is_certificate_valid_for_hostname",
    "load_certificate",
    "parse_proxy_header",
    "validate_certificate_file",
]
