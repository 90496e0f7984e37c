"""``tlacacoca.security.certificates``: self-signed certificates, loading and fingerprints.

Differences from tlacacoca 0.3.0: ``generate_self_signed_cert`` writes the
key as PKCS#8 PEM (``BEGIN PRIVATE KEY``) and leaves ``organization`` out of
the subject; ``key_size`` must be 2048 (RSA-2048) or 0 for ECDSA P-256. SHA-1
fingerprints are refused (``ValueError``), so ``get_certificate_info`` has no
``fingerprint_sha1``. ``is_certificate_valid_for_hostname`` checks the
subject alternative names only, as browsers and RFC 6125 do (tlacacoca also
accepts a common name equal to the host), ignoring case and with a wildcard
standing for one leftmost label; IP addresses match IP entries.
``is_certificate_expired`` and ``validate_certificate_file`` also refuse a
certificate that is not valid yet. ``get_certificate_info`` gives subject and
issuer as ``tessera certs inspect`` prints them, not in RFC 4514 order. ``load_certificate`` needs the
``cryptography`` package, as tlacacoca does; the other helpers take a
``cryptography`` certificate, DER bytes or PEM text.
"""

from __future__ import annotations

import ipaddress
import time
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


def _info(cert) -> certs.CertInfo:
    try:
        return certs.parse_certificate(_certificate(cert))
    except certs.CertError as error:
        raise ValueError(str(error)) from error


def is_certificate_expired(cert) -> bool:
    """Whether ``cert`` is outside its validity now (expired, or not yet valid)."""
    info = _info(cert)
    now = time.time()
    return not info.not_before <= now <= info.not_after


def is_certificate_valid_for_hostname(cert, hostname: str) -> bool:
    """Whether a subject alternative name of ``cert`` names ``hostname``."""
    names = _info(cert).subject_alt_names
    try:
        address = ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return any(
            name.startswith("IP:") and ipaddress.ip_address(name[3:]) == address for name in names
        )
    host = hostname.rstrip(".").lower()
    for name in names:
        if not name.startswith("DNS:"):
            continue
        pattern = name[4:].rstrip(".").lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == pattern[2:] and "." in rest:
                return True
    return False


def get_certificate_info(cert) -> dict[str, str]:
    """What ``cert`` says, as strings: subject, issuer, serial number,
    validity (ISO 8601, UTC), SHA-256 fingerprint, whether it is expired,
    and its DNS names (``san``, comma-separated)."""
    import datetime

    info = _info(cert)

    def iso(seconds: int) -> str:
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat()

    return {
        "subject": info.subject,
        "issuer": info.issuer,
        "serial_number": str(int(info.serial.replace(":", ""), 16)),
        "not_before": iso(info.not_before),
        "not_after": iso(info.not_after),
        "fingerprint_sha256": info.fingerprint,
        "expired": str(is_certificate_expired(cert)),
        "san": ", ".join(name[4:] for name in info.subject_alt_names if name.startswith("DNS:")),
    }


def validate_certificate_file(cert_path: Path) -> tuple[bool, str]:
    """``(True, "")`` for a PEM file whose first certificate is valid now,
    else ``(False, why)``."""
    cert_path = Path(cert_path)
    if not cert_path.exists():
        return False, "Certificate file not found"
    try:
        der = certs.load_certificates(cert_path)[0]
    except (certs.CertError, IndexError) as error:
        return False, f"Invalid certificate file: {error or 'no certificate in it'}"
    if is_certificate_expired(der):
        return False, "Certificate has expired or is not valid yet"
    return True, ""


__all__ = [
    "generate_self_signed_cert",
    "get_certificate_fingerprint",
    "get_certificate_fingerprint_from_path",
    "get_certificate_info",
    "is_certificate_expired",
    "is_certificate_valid_for_hostname",
    "load_certificate",
    "validate_certificate_file",
]
