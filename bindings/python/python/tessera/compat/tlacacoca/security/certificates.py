"""``tlacacoca.security.certificates``: self-signed certificates, loading and fingerprints.

Differences from tlacacoca 0.3.0: ``generate_self_signed_cert`` writes the
key as PKCS#8 PEM (``BEGIN PRIVATE KEY``) and leaves ``organization`` out of
the subject; ``key_size`` must be 2048 (RSA-2048) or 0 for ECDSA P-256. SHA-1
fingerprints are refused (``ValueError``). ``load_certificate`` needs the
``cryptography`` package, as tlacacoca does.
"""

from __future__ import annotations

from pathlib import Path

from tessera import certs


def generate_self_signed_cert(
    hostname: str,
    organization: str,
    key_size: int = 2048,
    valid_days: int = 365,
) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``hostname``: ``(cert_pem, key_pem)``."""
    key_types = {2048: "rsa-2048", 0: "ecdsa-p256"}
    if key_size not in key_types:
        raise ValueError("key_size must be 2048 (RSA) or 0 (ECDSA P-256)")
    try:
        cert = certs.self_signed(hostname, key_type=key_types[key_size], days=valid_days)
    except certs.CertError as error:
        raise ValueError(str(error)) from error
    return cert.cert_pem.encode(), cert.key_pem.encode()


def load_certificate(cert_path: Path):
    """The first certificate of a PEM file, as a ``cryptography`` certificate."""
    from cryptography import x509

    cert_path = Path(cert_path)
    if not cert_path.exists():
        raise FileNotFoundError(f"Certificate file not found: {cert_path}")
    try:
        der = certs.load_certificates(cert_path)[0]
    except certs.CertError as error:
        raise ValueError(f"Invalid certificate file: {error}") from error
    return x509.load_der_x509_certificate(der)


def _certificate(cert) -> bytes | str:
    """DER bytes or PEM text of ``cert``, which may be a ``cryptography`` certificate."""
    if isinstance(cert, (bytes, bytearray, memoryview)):
        return bytes(cert)
    if isinstance(cert, str):
        return cert
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.DER)


def get_certificate_fingerprint(cert, algorithm: str = "sha256") -> str:
    """``sha256:<hex>`` of a certificate (a ``cryptography`` certificate, DER
    bytes or PEM text)."""
    if algorithm != "sha256":
        raise ValueError(f"Unsupported algorithm: {algorithm} (only sha256)")
    return certs.fingerprint(_certificate(cert))


def get_certificate_fingerprint_from_path(cert_path: Path, algorithm: str = "sha256") -> str:
    """``sha256:<hex>`` of the first certificate of a PEM file."""
    if algorithm != "sha256":
        raise ValueError(f"Unsupported algorithm: {algorithm} (only sha256)")
    cert_path = Path(cert_path)
    if not cert_path.exists():
        raise FileNotFoundError(f"Certificate file not found: {cert_path}")
    try:
        return certs.load_certificate(cert_path).fingerprint
    except certs.CertError as error:
        raise ValueError(f"Invalid certificate file: {error}") from error


__all__ = [
    "generate_self_signed_cert",
    "get_certificate_fingerprint",
    "get_certificate_fingerprint_from_path",
    "load_certificate",
]
