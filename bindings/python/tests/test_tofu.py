import subprocess
import time

import pytest

import tessera
from tessera import certs, tofu


def test_first_use_then_match_then_change(tmp_path):
    store = tofu.TofuStore(tmp_path / "tofu.sqlite3")
    first, second = certs.self_signed("example.org"), certs.self_signed("example.org")
    assert store.verify_or_trust("Example.ORG", 1965, first.der).kind == "first_use"
    verdict = store.verify_or_trust("example.org", 1965, first.der)
    assert (verdict.kind, verdict.expired) == ("match", False)
    with pytest.raises(tofu.CertificateChanged) as caught:
        store.verify_or_trust("example.org", 1965, second.der)
    error = caught.value
    assert isinstance(error, tessera.TesseraError)
    assert (error.host, error.port) == ("example.org", 1965)
    assert (error.stored, error.presented) == (first.fingerprint, second.fingerprint)
    assert error.first_seen > 0
    assert "tessera tofu trust" in str(error)
    pin = store.lookup("example.org", 1965)
    assert pin.fingerprint == first.fingerprint and pin.trusted_by == "first-use"
    assert pin.not_after == first.info.not_after
    assert len(store) == 1


def test_check_trust_revoke_and_list(tmp_path):
    store = tofu.TofuStore(tmp_path / "tofu.sqlite3")
    a, b = certs.self_signed("a.example"), certs.self_signed("a.example")
    assert store.check("a.example", 1965, a.der) is False
    assert len(store) == 0
    assert store.trust("a.example", 1965, a.fingerprint) is None
    assert store.check("a.example", 1965, a.der) is True
    with pytest.raises(tofu.CertificateChanged):
        store.check("a.example", 1965, b.der)
    assert store.trust("a.example", 1965, b.fingerprint) == a.fingerprint
    assert store.lookup("a.example", 1965).trusted_by == "manual"
    store.trust("a.example", 1966, a.fingerprint)
    assert {(p.host, p.port) for p in store.list()} == {("a.example", 1965), ("a.example", 1966)}
    assert store.revoke("a.example", 1965) is True
    assert store.revoke("a.example", 1965) is False
    assert store.revoke_host("a.example") == 1
    assert store.list() == []


def test_rotation_after_expiry(tmp_path):
    store = tofu.TofuStore(tmp_path / "tofu.sqlite3", rotation="after-expiry")
    old, new = certs.self_signed("r.example", days=1), certs.self_signed("r.example", days=30)
    store.verify_or_trust("r.example", 1965, old.der)
    later = time.time() + 3 * 86400
    verdict = store.verify_or_trust("r.example", 1965, new.der, now=later)
    assert (verdict.kind, verdict.previous) == ("rotated", old.fingerprint)
    strict = tofu.TofuStore(tmp_path / "strict.sqlite3")
    strict.verify_or_trust("r.example", 1965, old.der)
    assert strict.verify_or_trust("r.example", 1965, old.der, now=later).expired
    with pytest.raises(tofu.CertificateChanged):
        strict.verify_or_trust("r.example", 1965, new.der, now=later)


def test_bad_input(tmp_path):
    store = tofu.TofuStore(tmp_path / "tofu.sqlite3")
    cert = certs.self_signed("x")
    with pytest.raises(tofu.TofuError):
        store.verify_or_trust("bad host!", 1965, cert.der)
    with pytest.raises(tofu.TofuError):
        store.trust("x", 1965, "sha256:nothex")
    with pytest.raises(tofu.TofuError):
        store.lookup("x", 0)
    with pytest.raises(OverflowError):
        store.lookup("x", 70000)
    with pytest.raises(tessera.TesseraError):
        store.verify_or_trust("x", 1965, b"not der")
    with pytest.raises(ValueError):
        tofu.TofuStore(tmp_path / "t.sqlite3", rotation="sometimes")
    (tmp_path / "junk.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(tofu.TofuError):
        tofu.TofuStore(tmp_path / "junk.sqlite3")
    with pytest.raises(tofu.TofuError):
        tofu.TofuStore(tmp_path / "missing.sqlite3", read_only=True)
    assert str(tofu.default_path()).endswith("tofu.sqlite3")


def test_pins_are_shared_with_the_cli(tmp_path, tessera_cli):
    cli = tessera_cli
    if cli is None:
        pytest.skip("the tessera CLI is not built (cargo build): the shared store was not checked")
    db = tmp_path / "tofu.sqlite3"
    cert = certs.self_signed("shared.example")
    tofu.TofuStore(db).verify_or_trust("shared.example", 1965, cert.der)
    listed = subprocess.run(
        [str(cli), "tofu", "list", "--db", str(db)], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert f"shared.example:1965  {cert.fingerprint}" in listed.stdout
    # And the other way: a pin the CLI writes is read here.
    other = certs.self_signed("cli.example")
    trusted = subprocess.run(
        [str(cli), "tofu", "trust", "cli.example:1965", "--fingerprint", other.fingerprint, "--db", str(db)],
        capture_output=True, text=True, timeout=60,
    )
    assert trusted.returncode == 0, trusted.stderr
    assert tofu.TofuStore(db).lookup("cli.example", 1965).fingerprint == other.fingerprint
