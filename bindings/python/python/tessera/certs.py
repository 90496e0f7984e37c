"""Certificates: self-signed ones and a development PKI (CA, server and
client certificate), their details, and fingerprints in the format every
Tessera tool prints (``sha256:<64 hex>``).

>>> from tessera import certs
>>> cert = certs.self_signed("localhost")
>>> certs.fingerprint(cert.cert_pem) == cert.fingerprint
True
"""

from tessera._tessera import (
    CertError,
    CertInfo,
    Certificate,
    Pki,
    dev_pki,
    fingerprint,
    load_certificate,
    load_certificates,
    parse_certificate,
    self_signed,
)

__all__ = [
    "CertError",
    "CertInfo",
    "Certificate",
    "Pki",
    "dev_pki",
    "fingerprint",
    "load_certificate",
    "load_certificates",
    "parse_certificate",
    "self_signed",
]
