"""``tlacacoca.security`` (the certificate helpers; see the package docstring for what is not provided)."""

from .certificates import (
    generate_self_signed_cert,
    get_certificate_fingerprint,
    get_certificate_fingerprint_from_path,
    load_certificate,
)

__all__ = [
    "generate_self_signed_cert",
    "get_certificate_fingerprint",
    "get_certificate_fingerprint_from_path",
    "load_certificate",
]
