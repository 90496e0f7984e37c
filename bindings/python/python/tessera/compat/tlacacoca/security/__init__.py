"""``tlacacoca.security``: TLS contexts, certificate helpers and TOFU (see
the package docstring for what is not provided)."""

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
from .tls import create_client_context, create_server_context
from .tofu import CertificateChangedError, TOFUDatabase

__all__ = [
    "CertificateChangedError",
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
    "validate_certificate_file",
]
