"""``tlacacoca.security``: TLS contexts, certificate helpers, TOFU and the
PROXY protocol parser (see the package docstring for what is not provided)."""

from .certificates import (
    generate_self_signed_cert,
    get_certificate_fingerprint,
    get_certificate_fingerprint_from_path,
    get_certificate_info,
    is_certificate_expired,
    is_certificate_valid_for_hostname,
    load_certificate,
    validate_certificate_file,
)
from .proxy_protocol import ProxyHeader, ProxyProtocolConfig, ProxyProtocolError, parse_proxy_header
from .tls import create_client_context, create_server_context
from .tofu import CertificateChangedError, TOFUDatabase

__all__ = [
    "CertificateChangedError",
    "ProxyHeader",
    "ProxyProtocolConfig",
    "ProxyProtocolError",
    "TOFUDatabase",
    "create_client_context",
    "create_server_context",
    "generate_self_signed_cert",
    "get_certificate_fingerprint",
    "get_certificate_fingerprint_from_path",
    "get_certificate_info",
    "is_certificate_expired",
    "is_certificate_valid_for_hostname",
    "load_certificate",
    "parse_proxy_header",
    "validate_certificate_file",
]
