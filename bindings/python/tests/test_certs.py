import hashlib
import ssl
import subprocess
import shutil

import pytest

import tessera
from tessera import certs


def test_self_signed_certificate_fields():
    cert = certs.self_signed("example.org", ["www.example.org", "192.0.2.1"], days=30)
    info = cert.info
    assert info.common_name == "example.org"
    assert "DNS:example.org" in info.subject_alt_names
    assert "DNS:www.example.org" in info.subject_alt_names
    assert "IP:192.0.2.1" in info.subject_alt_names
    assert 29 * 86400 <= info.not_after - info.not_before <= 31 * 86400
    assert info.key_algorithm == "ECDSA P-256"
    assert not info.is_ca
    assert cert.fingerprint == "sha256:" + hashlib.sha256(cert.der).hexdigest()
    assert cert.fingerprint in repr(cert)
    assert "BEGIN PRIVATE KEY" in cert.key_pem


@pytest.mark.parametrize("key_type, algorithm", [("ed25519", "Ed25519"), ("rsa-2048", "RSA-2048")])
def test_other_key_types(key_type, algorithm):
    assert certs.self_signed("k", key_type=key_type).info.key_algorithm == algorithm


def test_python_ssl_loads_what_we_write(tmp_path):
    cert = certs.self_signed("localhost", usage="server")
    cert.write(tmp_path / "cert.pem", tmp_path / "key.pem")
    assert (tmp_path / "key.pem").stat().st_mode & 0o777 == 0o600
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    with pytest.raises(certs.CertError):
        cert.write(tmp_path / "cert.pem", tmp_path / "key.pem")
    cert.write(tmp_path / "cert.pem", tmp_path / "key.pem", overwrite=True)


def test_fingerprint_and_parse_accept_pem_and_der():
    cert = certs.self_signed("x")
    assert certs.fingerprint(cert.der) == certs.fingerprint(cert.cert_pem) == cert.fingerprint
    assert certs.parse_certificate(cert.cert_pem).fingerprint == cert.fingerprint
    assert certs.parse_certificate(cert.der).subject == cert.info.subject


def test_dev_pki_chain_verifies_with_openssl(tmp_path):
    pki = certs.dev_pki(server_names=["node.internal"], client_name="worker-7")
    paths = pki.write(tmp_path / "pki")
    assert len(paths) == 6
    assert (tmp_path / "pki").stat().st_mode & 0o777 == 0o700
    assert pki.ca.info.is_ca
    assert pki.server.info.issuer == pki.ca.info.subject
    assert "DNS:node.internal" in pki.server.info.subject_alt_names
    assert pki.client.info.common_name == "worker-7"
    loaded = certs.load_certificates(tmp_path / "pki" / "ca_cert.pem")
    assert loaded == [pki.ca.der]
    assert certs.load_certificate(tmp_path / "pki" / "client_cert.pem").common_name == "worker-7"
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: the chain was not checked by OpenSSL")
    for leaf in ("server-cert.pem", "client_cert.pem"):
        result = subprocess.run(
            ["openssl", "verify", "-CAfile", tmp_path / "pki" / "ca_cert.pem", tmp_path / "pki" / leaf],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr


def test_bad_input_raises_documented_errors(tmp_path):
    with pytest.raises(ValueError):
        certs.self_signed("x", key_type="dsa")
    with pytest.raises(ValueError):
        certs.self_signed("x", usage="everything")
    with pytest.raises(ValueError):
        certs.self_signed("x", days=0)
    with pytest.raises(ValueError):
        certs.dev_pki(leaf_days=0)
    with pytest.raises(certs.CertError):
        certs.fingerprint("no pem here")
    with pytest.raises(certs.CertError):
        certs.parse_certificate(b"\x30\x03\x02\x01\x00")
    with pytest.raises(ValueError):
        certs.fingerprint(12)
    missing = tmp_path / "missing.pem"
    with pytest.raises(certs.CertError, match="missing.pem"):
        certs.load_certificates(missing)
    (tmp_path / "key.pem").write_text(certs.self_signed("x").key_pem)
    with pytest.raises(certs.CertError, match="no CERTIFICATE"):
        certs.load_certificate(tmp_path / "key.pem")
    pki = certs.dev_pki()
    pki.write(tmp_path / "once")
    with pytest.raises(tessera.TesseraError):
        pki.write(tmp_path / "once")
