"""tessera.compat.tlacacoca against the real tlacacoca 0.3.0: the same names
and signatures, the same decisions wherever the guard vectors say the two
agree, and the documented refusals where they differ."""

import asyncio
import importlib
import inspect
import ipaddress

import pytest

import tessera.compat.tlacacoca as ours
from tessera import certs

theirs = pytest.importorskip("tlacacoca", reason="tlacacoca 0.3.0 is not installed (pip install tlacacoca==0.3.0)")

MODULES = [
    "",
    ".middleware",
    ".middleware.base",
    ".middleware.rate_limit",
    ".middleware.access_control",
    ".middleware.certificate_auth",
    ".security",
    ".security.certificates",
    ".security.tls",
    ".security.tofu",
    ".security.proxy_protocol",
    ".logging",
]


def run(coroutine):
    return asyncio.run(coroutine)


def _parameters(function):
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("suffix", MODULES)
def test_provided_names_match_tlacacoca(suffix):
    our_module = importlib.import_module("tessera.compat.tlacacoca" + suffix)
    their_module = importlib.import_module("tlacacoca" + suffix)
    for name in our_module.__all__:
        if not hasattr(their_module, name):
            assert name in {"set_log_key", "set_log_key_file"}, name
            continue
        ours_object, theirs_object = getattr(our_module, name), getattr(their_module, name)
        if inspect.isfunction(theirs_object):
            assert _parameters(ours_object) == _parameters(theirs_object), name
        elif inspect.isclass(theirs_object):
            for member, value in vars(theirs_object).items():
                if member.startswith("_") or member == "buckets":
                    continue
                assert hasattr(ours_object, member), f"{name}.{member}"
                if inspect.isfunction(value):
                    assert _parameters(getattr(ours_object, member)) == _parameters(value), f"{name}.{member}"
            if hasattr(theirs_object, "__dataclass_fields__"):
                their_fields = list(theirs_object.__dataclass_fields__)
                assert list(ours_object.__dataclass_fields__)[: len(their_fields)] == their_fields, name


def test_access_control_agrees_where_the_vectors_say_so(guard_vectors):
    for case in guard_vectors["acl"]:
        config = dict(allow_list=case["allow"], deny_list=case["deny"], default_allow=case["default_allow"])
        if "config_error" in case["tessera"]:
            with pytest.raises(ValueError):
                ours.AccessControl(ours.AccessControlConfig(**config))
            continue
        mine = run(ours.AccessControl(ours.AccessControlConfig(**config)).process_request("/", case["ip"]))
        real = run(theirs.AccessControl(theirs.AccessControlConfig(**config)).process_request("/", case["ip"]))
        assert mine.allowed is case["tessera"]["allowed"], case
        if not case["differs"]:
            assert (mine.allowed, mine.denial_reason) == (real.allowed, real.denial_reason), case


def test_certificate_rules_agree_where_the_vectors_say_so(guard_vectors):
    section = guard_vectors["cert_auth"]
    compared = 0
    for case in section["cases"]:
        if case.get("cert_valid") is False:
            continue  # fingerprints carry no dates: tlacacoca's middleware never checks them
        rules = section["rulesets"][case["rules"]]

        def config(module):
            return module.CertificateAuthConfig(
                [
                    module.CertificateAuthPathRule(
                        rule["prefix"],
                        rule.get("require_cert", False),
                        set(rule["allowed_fingerprints"]) if rule.get("allowed_fingerprints") else None,
                    )
                    for rule in rules
                ]
            )

        url = "gemini://example.org" + case["path"]
        mine = run(ours.CertificateAuth(config(ours)).process_request(url, "192.0.2.1", case["fingerprint"]))
        assert mine.allowed is case["tessera"]["allowed"], case
        assert mine.denial_reason == case["tessera"]["reason"], case
        if not case["differs"]:
            real = run(theirs.CertificateAuth(config(theirs)).process_request(url, "192.0.2.1", case["fingerprint"]))
            assert (mine.allowed, mine.denial_reason) == (real.allowed, real.denial_reason), case
            compared += 1
    assert compared >= 5


def test_rate_limit_and_chain_results():
    limiter = ours.RateLimiter(ours.RateLimitConfig(capacity=2, refill_rate=0.001))
    results = [run(limiter.process_request("/", "192.0.2.1")) for _ in range(3)]
    assert [r.allowed for r in results] == [True, True, False]
    assert results[2].denial_reason == ours.DenialReason.RATE_LIMIT == "rate_limit"
    assert results[2].retry_after >= 1
    assert run(limiter.process_request("/", "192.0.2.2")).allowed
    limiter.start()
    run(limiter.stop())
    admin = certs.self_signed("admin").fingerprint
    chain = ours.MiddlewareChain(
        [
            ours.AccessControl(ours.AccessControlConfig(deny_list=["198.51.100.0/24"])),
            ours.RateLimiter(ours.RateLimitConfig(capacity=100)),
            ours.CertificateAuth(
                ours.CertificateAuthConfig([ours.CertificateAuthPathRule("/admin/", True, {admin})])
            ),
        ]
    )
    assert chain._fused is not None
    check = lambda url, ip, fp=None: run(chain.process_request(url, ip, fp))  # noqa: E731
    assert check("gemini://h/", "198.51.100.4").denial_reason == "access_denied"
    assert check("gemini://h/admin/", "192.0.2.1").denial_reason == "cert_required"
    assert check("gemini://h/admin/", "192.0.2.1", "sha256:" + "00" * 32).denial_reason == "cert_not_authorized"
    assert check("gemini://h/admin/", "192.0.2.1", "not a fingerprint").denial_reason == "cert_not_authorized"
    assert check("gemini://h/admin/x?q=1", "192.0.2.1", admin.upper().replace("SHA256", "sha256")).allowed
    assert check("gemini://h/%2e%2e/admin/", "192.0.2.1").denial_reason == "cert_required"
    assert check("gemini://h/%zz", "192.0.2.1").denial_reason == "access_denied"
    assert check("gemini://h/x", "not an ip").allowed is False


def test_chains_in_another_order_or_with_foreign_middleware_run_in_turn():
    class Deny:
        async def process_request(self, request_url, client_ip, client_cert_fingerprint=None):
            return ours.MiddlewareResult(False, "custom")

    limiter = ours.RateLimiter(ours.RateLimitConfig(capacity=1, refill_rate=0.001))
    auth = ours.CertificateAuth(ours.CertificateAuthConfig([ours.CertificateAuthPathRule("/a/", True)]))
    reordered = ours.MiddlewareChain([auth, limiter])
    assert reordered._fused is None
    # The certificate rule refuses first, so the limiter is not charged.
    assert run(reordered.process_request("/a/", "192.0.2.1")).denial_reason == "cert_required"
    assert run(reordered.process_request("/b/", "192.0.2.1")).allowed
    assert run(reordered.process_request("/b/", "192.0.2.1")).denial_reason == "rate_limit"
    foreign = ours.MiddlewareChain([Deny()])
    assert run(foreign.process_request("/", "192.0.2.1")).denial_reason == "custom"
    assert run(ours.MiddlewareChain([]).process_request("/", "192.0.2.1")).allowed


def test_bad_configuration_raises_value_error():
    with pytest.raises(ValueError):
        ours.AccessControl(ours.AccessControlConfig(allow_list=["not an address"]))
    with pytest.raises(ValueError):
        ours.RateLimiter(ours.RateLimitConfig(capacity=0))
    with pytest.raises(ValueError):
        ours.CertificateAuth(ours.CertificateAuthConfig([ours.CertificateAuthPathRule("/a/", True, {"sha256:nothex"})]))
    with pytest.raises(ValueError):
        ours.CertificateAuth(ours.CertificateAuthConfig([ours.CertificateAuthPathRule("/a/", True, set())]))


def test_rate_limiter_memory_stays_bounded():
    limiter = ours.RateLimiter(ours.RateLimitConfig(capacity=5, max_clients=10_000))
    base = int(ipaddress.IPv4Address("10.0.0.0"))

    async def fill():
        for index in range(50_000):
            assert (await limiter.process_request("/", str(ipaddress.IPv4Address(base + index)))).allowed

    run(fill())
    assert limiter.tracked_clients <= 10_000


def test_certificate_helpers_match(tmp_path):
    cert_pem, key_pem = ours.generate_self_signed_cert("localhost", "Org")
    assert b"BEGIN CERTIFICATE" in cert_pem and b"BEGIN PRIVATE KEY" in key_pem
    path = tmp_path / "cert.pem"
    path.write_bytes(cert_pem)
    loaded = ours.load_certificate(path)
    assert ours.get_certificate_fingerprint(loaded) == theirs.get_certificate_fingerprint(loaded)
    assert ours.get_certificate_fingerprint_from_path(path) == theirs.get_certificate_fingerprint_from_path(path)
    assert ours.get_certificate_fingerprint(cert_pem.decode()) == ours.get_certificate_fingerprint(loaded)
    with pytest.raises(ValueError):
        ours.get_certificate_fingerprint(loaded, "sha1")
    with pytest.raises(FileNotFoundError):
        ours.load_certificate(tmp_path / "missing.pem")
    (tmp_path / "bad.pem").write_text("garbage")
    with pytest.raises(ValueError):
        ours.load_certificate(tmp_path / "bad.pem")
    with pytest.raises(ValueError):
        ours.generate_self_signed_cert("localhost", "Org", key_size=1024)


def _cn_only_certificate(common_name, alt_name):
    """A certificate whose common name is not among its alternative names."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(alt_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )


def test_certificate_checks_agree_where_tlacacoca_is_right(tmp_path):
    issued = certs.self_signed("capsule.example", ["*.pages.example", "127.0.0.1"])
    path = tmp_path / "cert.pem"
    path.write_text(issued.cert_pem)
    loaded = ours.load_certificate(path)
    for host in ["capsule.example", "other.example"]:
        assert ours.is_certificate_valid_for_hostname(loaded, host) == theirs.is_certificate_valid_for_hostname(
            loaded, host
        ), host
    # Where tlacacoca compares strings only: case, wildcards and IP addresses.
    assert ours.is_certificate_valid_for_hostname(loaded, "Capsule.Example")
    assert ours.is_certificate_valid_for_hostname(loaded, "a.pages.example")
    assert not ours.is_certificate_valid_for_hostname(loaded, "a.b.pages.example")
    assert not ours.is_certificate_valid_for_hostname(loaded, "pages.example")
    assert ours.is_certificate_valid_for_hostname(loaded, "127.0.0.1")
    assert not ours.is_certificate_valid_for_hostname(issued.der, "127.0.0.2")
    # A common name alone names nothing (tlacacoca accepts it).
    cn_only = _cn_only_certificate("cn.example", "alt.example")
    assert theirs.is_certificate_valid_for_hostname(cn_only, "cn.example")
    assert not ours.is_certificate_valid_for_hostname(cn_only, "cn.example")
    assert ours.is_certificate_valid_for_hostname(cn_only, "alt.example")

    assert not ours.is_certificate_expired(loaded)
    assert not theirs.is_certificate_expired(loaded)
    info, their_info = ours.get_certificate_info(loaded), theirs.get_certificate_info(loaded)
    for key in ["serial_number", "not_before", "not_after", "fingerprint_sha256", "expired", "san"]:
        assert info[key] == their_info[key], key
    assert "fingerprint_sha1" not in info
    assert ours.get_certificate_info(issued.cert_pem) == info

    assert ours.validate_certificate_file(path) == (True, "") == theirs.validate_certificate_file(path)
    assert ours.validate_certificate_file(tmp_path / "missing.pem") == (False, "Certificate file not found")
    (tmp_path / "bad.pem").write_text("garbage")
    valid, why = ours.validate_certificate_file(tmp_path / "bad.pem")
    assert not valid and why
    with pytest.raises(ValueError):
        ours.is_certificate_expired(b"not a certificate")


def test_log_processor_is_keyed():
    from tessera.compat.tlacacoca import logging as log

    event = log.hash_ip_processor(None, "info", {"event": "x", "client_ip": "203.0.113.7"})
    assert "client_ip" not in event
    assert len(event["client_ip_hash"]) == 16
    real = theirs.hash_ip_processor(None, "info", {"client_ip": "203.0.113.7"})["client_ip_hash"]
    assert event["client_ip_hash"] != real  # not the unkeyed, reversible SHA-256
    log.set_log_key(bytes(range(32)))
    first = log.hash_ip_processor(None, "info", {"client_ip": "203.0.113.7"})["client_ip_hash"]
    log.set_log_key(bytes(range(32)))
    assert log.hash_ip_processor(None, "info", {"client_ip": "203.0.113.7"})["client_ip_hash"] == first
    assert log.hash_ip_processor(None, "info", {"client_ip": "junk"})["client_ip_hash"] == "invalid"
    assert log.hash_ip_processor(None, "info", {"client_ip": "unknown"}) == {"client_ip": "unknown"}


def _cert_objects(name):
    from cryptography import x509

    cert = certs.self_signed(name)
    return cert, x509.load_der_x509_certificate(cert.der)


def test_tofu_database_behaves_as_tlacacoca(tmp_path):
    mine = ours.TOFUDatabase(tmp_path / "ours.sqlite3")
    real = theirs.TOFUDatabase(tmp_path / "theirs.db")
    first, first_x509 = _cert_objects("gem.example")
    second, second_x509 = _cert_objects("gem.example")
    for db in (mine, real):
        assert db.verify("gem.example", 1965, first_x509) == (True, "first_use")
        assert db.get_host_info("gem.example", 1965) is None
        db.trust("gem.example", 1965, first_x509)
        assert db.verify("gem.example", 1965, first_x509) == (True, "")
        assert db.verify("gem.example", 1965, second_x509) == (False, "changed")
        db.trust("gem.example", 1966, first_x509)
        assert db.count_by_hostname("gem.example") == 2
        assert db.revoke("gem.example", 1966) is True
        assert db.revoke("gem.example", 1966) is False
    assert mine.get_host_info("gem.example", 1965)["fingerprint"] == real.get_host_info("gem.example", 1965)["fingerprint"]
    assert [h["hostname"] for h in mine.list_hosts()] == [h["hostname"] for h in real.list_hosts()]
    # Pins move between the two through tlacacoca's TOML layout, both ways.
    real.trust("other.example", 1965, second_x509)
    real.export_toml(tmp_path / "theirs.toml")
    assert mine.import_toml(tmp_path / "theirs.toml") == (1, 0, 1)
    assert mine.get_host_info("other.example", 1965)["fingerprint"] == second.fingerprint
    conflicts = []
    real.trust("gem.example", 1965, second_x509)
    real.export_toml(tmp_path / "changed.toml")
    assert mine.import_toml(tmp_path / "changed.toml") == (0, 0, 2)
    assert mine.import_toml(tmp_path / "changed.toml", on_conflict=lambda *a: conflicts.append(a) or True) == (0, 1, 1)
    assert conflicts == [("gem.example", 1965, first.fingerprint, second.fingerprint)]
    assert mine.export_toml(tmp_path / "ours.toml") == 2
    fresh = theirs.TOFUDatabase(tmp_path / "fresh.db")
    assert fresh.import_toml(tmp_path / "ours.toml") == (2, 0, 0)
    assert mine.clear() == 2
    assert mine.list_hosts() == []
    (tmp_path / "bad.toml").write_text("[hosts.x]\nhostname = 'x'\n")
    with pytest.raises(ValueError):
        mine.import_toml(tmp_path / "bad.toml")
    with pytest.raises(FileNotFoundError):
        mine.import_toml(tmp_path / "missing.toml")
    with pytest.raises(ValueError):
        mine.verify("bad host!", 1965, first_x509)
    error = ours.CertificateChangedError("h", 1, "sha256:a", "sha256:b")
    assert (error.hostname, error.old_fingerprint) == ("h", "sha256:a")


def test_tls_contexts_handshake_and_match_tlacacoca(tmp_path):
    import socket
    import ssl
    import threading

    server_cert = certs.self_signed("localhost", usage="server")
    server_cert.write(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_cert = certs.self_signed("client", usage="client")
    client_cert.write(tmp_path / "client.pem", tmp_path / "client-key.pem")
    args = (str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"), True, [str(tmp_path / "client.pem")])
    server_context = ours.create_server_context(*args)
    their_server = theirs.create_server_context(*args)
    client_context = ours.create_client_context(certfile=str(tmp_path / "client.pem"), keyfile=str(tmp_path / "client-key.pem"))
    their_client = theirs.create_client_context()
    for mine, real in ((server_context, their_server), (client_context, their_client)):
        assert (mine.minimum_version, mine.verify_mode, mine.check_hostname) == (
            real.minimum_version,
            real.verify_mode,
            real.check_hostname,
        )
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    seen = {}

    def serve():
        connection, _ = listener.accept()
        with server_context.wrap_socket(connection, server_side=True) as tls:
            seen["client"] = tls.getpeercert(binary_form=True)
            tls.sendall(b"20 text/gemini\r\n")

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=30) as raw:
            with client_context.wrap_socket(raw, server_hostname="localhost") as tls:
                presented = tls.getpeercert(binary_form=True)
                assert tls.recv(64).startswith(b"20 ")
    finally:
        thread.join(timeout=30)
        listener.close()
    assert certs.fingerprint(presented) == server_cert.fingerprint
    assert certs.fingerprint(seen["client"]) == client_cert.fingerprint


def test_configure_logging_writes_keyed_json_lines_to_a_private_file(tmp_path):
    import json
    import os
    import stat

    import structlog

    from tessera.compat.tlacacoca import logging as log

    log.set_log_key(bytes(range(32)))
    path = tmp_path / "app.log"
    try:
        ours.configure_logging(log_level="info", log_file=path, json_logs=True)
        logger = ours.get_logger("tests")
        logger.debug("hidden", client_ip="203.0.113.7")
        logger.info("request", client_ip="203.0.113.7", path="/")
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert [line["event"] for line in lines] == ["request"]
        (line,) = lines
        assert line["level"] == "info" and line["path"] == "/" and "timestamp" in line
        assert "client_ip" not in line
        assert line["client_ip_hash"] == log.hash_ip_processor(None, "info", {"client_ip": "203.0.113.7"})["client_ip_hash"]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

        # A second configuration writes elsewhere; the addresses stay when asked.
        other = tmp_path / "other.log"
        ours.configure_logging(log_file=other, json_logs=True, hash_ips=False)
        ours.get_logger("tests").warning("kept", client_ip="203.0.113.7")
        assert json.loads(other.read_text())["client_ip"] == "203.0.113.7"
        assert len(path.read_text().splitlines()) == 1

        with pytest.raises(ValueError, match="unknown log level"):
            ours.configure_logging(log_level="loud")
    finally:
        structlog.reset_defaults()


def test_request_urls_are_read_as_urlparse_reads_them():
    def chain(module):
        rule = module.CertificateAuthPathRule("/admin/", True)
        return module.MiddlewareChain([module.CertificateAuth(module.CertificateAuthConfig([rule]))])

    mine, real = chain(ours), chain(theirs)
    for url in [
        "gemini://h/admin/x",
        "gemini://h:1965/admin/?q",
        "gemini://h?/admin/",
        "gemini://h#/admin/",
        "gemini://h",
        "gemini:/admin/x",
        "titan://h/admin/x;size=1",
        "/admin/x",
        "/public/admin/",
        "//h/admin/x",
        "GEMINI://H/admin/",
    ]:
        expected = run(real.process_request(url, "192.0.2.1"))
        got = run(mine.process_request(url, "192.0.2.1"))
        assert (got.allowed, got.denial_reason) == (expected.allowed, expected.denial_reason), url


def test_process_request_is_awaitable_and_subclasses_keep_their_own():
    import asyncio

    calls = []

    class LoggedLimiter(ours.RateLimiter):
        async def process_request(self, request_url, client_ip, client_cert_fingerprint=None):
            calls.append(request_url)
            return await super().process_request(request_url, client_ip, client_cert_fingerprint)

    limiter = LoggedLimiter(ours.RateLimitConfig(capacity=1, refill_rate=0.001))
    chain = ours.MiddlewareChain([limiter])
    assert chain._fused is None  # an override is run, not fused away
    assert run(chain.process_request("/a", "192.0.2.1")).allowed
    assert run(chain.process_request("/b", "192.0.2.1")).denial_reason == "rate_limit"
    assert calls == ["/a", "/b"]

    fused = ours.MiddlewareChain([ours.RateLimiter(ours.RateLimitConfig(capacity=100))])
    assert fused._fused is not None

    async def main():
        # What callers do with a coroutine works with the answer too.
        task = asyncio.create_task(fused.process_request("/", "192.0.2.1"))
        waited = await asyncio.wait_for(fused.process_request("/", "192.0.2.1"), timeout=5)
        return await task, waited

    first, second = asyncio.run(main())
    assert first.allowed and second.allowed
    assert ours.MiddlewareResult(True) == first


def _v2(ver_cmd, family, payload):
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([ver_cmd, family]) + len(payload).to_bytes(2, "big") + payload


def test_proxy_headers_agree_with_tlacacoca_and_are_refused_no_later():
    from tlacacoca.security import proxy_protocol as their_proxy

    from tessera.compat.tlacacoca.security import proxy_protocol as our_proxy

    inet = bytes([198, 51, 100, 9, 192, 0, 2, 1]) + (443).to_bytes(2, "big") + (1965).to_bytes(2, "big")
    inet6 = bytes(range(32)) + (1).to_bytes(2, "big") + (2).to_bytes(2, "big")
    tlv = bytes([2, 0, 3]) + b"a.b" + bytes([4, 0, 0])
    headers = [
        b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 1234\r\n",
        b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n",
        b"PROXY UNKNOWN\r\n",
        b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
        _v2(0x21, 0x11, inet),
        _v2(0x21, 0x11, inet + tlv),
        _v2(0x21, 0x21, inet6 + tlv),
        _v2(0x21, 0x12, inet),  # a datagram: no client address
        _v2(0x21, 0x00, tlv),  # UNSPEC with TLVs
        _v2(0x21, 0x31, bytes(216)),  # a Unix socket
        _v2(0x20, 0x00, b""),  # LOCAL, as health checks send it
        _v2(0x20, 0x11, b""),  # LOCAL, its block ignored
        # Malformed:
        b"\x16\x03\x01\x02\x00",
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 1\r\n",
        b"PROXY TCP4 2001:db8::1 5.6.7.8 1 1\r\n",
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 1\r\n",
        b"PROXY " + b"A" * 120,
        b"PROXY TCP4 1.2.3.4\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 1 extra\r\n",
        _v2(0x11, 0x11, inet),
        _v2(0x22, 0x11, inet),
        _v2(0x21, 0x41, inet),
        _v2(0x21, 0x13, inet),
        _v2(0x21, 0x11, inet[:8]),
        _v2(0x21, 0x11, inet + bytes([2, 0, 9, 1])),
        _v2(0x21, 0x11, inet + b"\x01"),
        _v2(0x21, 0x11, bytes(5000)),
    ]

    def outcome(module, data):
        try:
            header = module.parse_proxy_header(data)
        except module.ProxyProtocolError:
            return "refused"
        if header is None:
            return None
        return (header.version, header.command, header.family, header.source, header.destination, header.tlvs, header.length)

    compared = refused_earlier = 0
    for header in headers:
        # Every prefix (bytes still arriving), the header, the header and what follows it.
        for data in [header[:cut] for cut in range(1, len(header))] + [header, header + b"\x16\x03rest"]:
            mine, real = outcome(our_proxy, data), outcome(their_proxy, data)
            if mine != real:
                # Ours may refuse as soon as a byte rules a header out, never later.
                assert (mine, real) == ("refused", None), (data, mine, real)
                refused_earlier += 1
            compared += 1
    assert compared > 1000 and refused_earlier > 0
    # tlacacoca's documented cases, field by field:
    header = our_proxy.parse_proxy_header(b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 1234\r\n\x16")
    assert header == our_proxy.ProxyHeader(1, "PROXY", "INET", ("203.0.113.7", 56324), ("192.0.2.1", 1234), (), 45)
    assert our_proxy.parse_proxy_header(b"") is None
    with pytest.raises(our_proxy.ProxyProtocolError):
        our_proxy.parse_proxy_header(_v2(0x21, 0x11, inet + tlv), max_header_size=20)
    with pytest.raises(our_proxy.ProxyProtocolError):
        our_proxy.parse_proxy_header(b"PROXY x", max_header_size=-1)


def test_proxy_protocol_config_and_helpers():
    from tessera.compat.tlacacoca.security import proxy_protocol as our_proxy

    config = our_proxy.ProxyProtocolConfig(trusted_sources=["100.64.0.0/10", " fd00::/8 ", "192.0.2.7"])
    assert [str(n) for n in config.networks] == ["100.64.0.0/10", "fd00::/8", "192.0.2.7/32"]
    assert config.is_trusted("100.101.102.103")
    assert config.is_trusted("::ffff:100.64.0.1")  # IPv4-mapped, as dual-stack sockets report it
    assert config.is_trusted("fd00::1%eth0")
    assert not config.is_trusted("203.0.113.9")
    assert not config.is_trusted("192.0.2.8")
    assert not config.is_trusted("not an address")
    assert not our_proxy.ProxyProtocolConfig().is_trusted("127.0.0.1")
    with pytest.raises(ValueError, match="trusted source"):
        our_proxy.ProxyProtocolConfig(trusted_sources=["10.0.0.1/8"])  # host bits: a typo, refused
    with pytest.raises(ValueError, match="trusted source"):
        our_proxy.parse_trusted_source("relay.example")
    with pytest.raises(ValueError):
        our_proxy.ProxyProtocolConfig(header_timeout=0)
    with pytest.raises(ValueError):
        our_proxy.ProxyProtocolConfig(header_timeout=float("nan"))
    with pytest.raises(ValueError):
        our_proxy.ProxyProtocolConfig(max_header_size=100)
    assert our_proxy.looks_like_proxy_header(b"P")
    assert our_proxy.looks_like_proxy_header(b"\r\n\r\n\x00\r\nQUIT\n\x21")
    assert not our_proxy.looks_like_proxy_header(b"\x16\x03\x01")
    assert not our_proxy.looks_like_proxy_header(b"")
    assert ours.parse_proxy_header is our_proxy.parse_proxy_header
