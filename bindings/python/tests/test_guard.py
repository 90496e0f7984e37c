import ipaddress
import threading

import pytest

import tessera
from tessera import certs, guard


def test_acl_vectors(guard_vectors):
    for case in guard_vectors["acl"]:
        expected = case["tessera"]
        settings = {
            "allow": case["allow"],
            "deny": case["deny"],
            "default": "allow" if case["default_allow"] else "deny",
        }
        if "config_error" in expected:
            with pytest.raises(guard.GuardError, match=expected["config_error"]):
                guard.Chain(**settings)
            continue
        chain = guard.Chain(**settings)
        decision = chain.check(_address(case["ip"]))
        assert decision.allowed is expected["allowed"], case
        assert decision.reason == expected["reason"], case
        assert bool(decision) is expected["allowed"]


def _address(text):
    """The vectors' unparsable client text is "no address" here: `check`
    raises for a string that is not an address, and refuses `None` in an ACL."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return None
    return text


def _rules(ruleset):
    rules = {}
    for rule in ruleset:
        if rule.get("allowed_fingerprints"):
            rules[rule["prefix"]] = rule["allowed_fingerprints"]
        elif rule.get("require_cert"):
            rules[rule["prefix"]] = "any"
        else:
            rules[rule["prefix"]] = "public"
    return rules


def test_cert_rule_vectors(guard_vectors):
    section = guard_vectors["cert_auth"]
    checked = 0
    for case in section["cases"]:
        if case.get("cert_valid") is False:
            continue  # dates need a real certificate: see test_cert_dates_are_checked
        chain = guard.Chain(cert_rules=_rules(section["rulesets"][case["rules"]]))
        decision = chain.check("192.0.2.1", case["path"], case["fingerprint"])
        assert decision.allowed is case["tessera"]["allowed"], case
        assert decision.reason == case["tessera"]["reason"], case
        checked += 1
    assert checked >= 10


def test_rate_limit_vectors(guard_vectors):
    for case in guard_vectors["rate_limit"]:
        chain = guard.Chain(rate=case["rate_per_s"], burst=case["burst"])
        for event in case["events"]:
            decision = chain.check(event["ip"], monotonic=event["t"])
            expected = event["tessera"]
            assert decision.allowed is expected["allowed"], (case["case"], event)
            if not expected["allowed"]:
                assert decision.reason == "rate_limited"
                assert decision.retry_after_secs == expected["retry_after"], (case["case"], event)
                assert 0 < decision.retry_after <= decision.retry_after_secs


def test_client_id_vectors(guard_vectors):
    section = guard_vectors["client_id"]
    ids = guard.ClientIds(bytes.fromhex(section["tessera_key_hex"]))
    for row in section["rows"]:
        assert ids.id(row["ip"]) == row["tessera_client_id"], row


def test_client_ids_random_key_file_and_daily(tmp_path):
    a, b = guard.ClientIds(), guard.ClientIds()
    assert a.id("192.0.2.1") != b.id("192.0.2.1")
    path = tmp_path / "log.key"
    first = guard.ClientIds.from_key_file(path).id("192.0.2.1")
    assert guard.ClientIds.from_key_file(str(path)).id("192.0.2.1") == first
    assert (path.stat().st_mode & 0o777) == 0o600
    daily = guard.ClientIds(b"k" * 32, daily=True)
    assert daily.id("192.0.2.1", now=0) != daily.id("192.0.2.1", now=86400 * 2)
    with pytest.raises(ValueError):
        guard.ClientIds(b"short")
    with pytest.raises(guard.GuardError):
        a.id("not an ip")
    (tmp_path / "bad.key").write_bytes(b"x")
    with pytest.raises(guard.GuardError):
        guard.ClientIds.from_key_file(tmp_path / "bad.key")


def test_full_chain_order_and_counters():
    admin = certs.self_signed("admin")
    other = certs.self_signed("other")
    chain = guard.Chain(
        deny=["198.51.100.0/24"],
        rate=1.0,
        burst=2,
        cert_rules={"/admin/": [admin.fingerprint], "/members/": "any"},
    )
    assert chain.check("198.51.100.7", "/").reason == "access_denied"
    assert chain.check("192.0.2.1", "/admin/x", admin.der, monotonic=0)
    assert chain.check("192.0.2.1", "/admin/x", other.der, monotonic=0).reason == "cert_not_authorized"
    assert chain.check("192.0.2.1", "/members/", monotonic=0).reason == "rate_limited"
    assert chain.check("192.0.2.2", "/members/", monotonic=0).reason == "cert_required"
    assert chain.check("192.0.2.2", "/members/", other.der, monotonic=0)
    assert chain.allowed == 2
    assert chain.denials == {
        "rate_limited": 1,
        "access_denied": 1,
        "cert_required": 1,
        "cert_not_authorized": 1,
        "cert_not_valid": 0,
    }
    assert chain.tracked_clients == 2
    assert set(chain.denials) == set(guard.DENIAL_REASONS)


def test_cert_dates_are_checked():
    cert = certs.self_signed("dated", days=1)
    chain = guard.Chain(cert_rules={"/": "any"})
    assert chain.check("192.0.2.1", "/", cert.der)
    later = cert.info.not_after + 86400
    assert chain.check("192.0.2.1", "/", cert.der, now=later).reason == "cert_not_valid"
    lenient = guard.Chain(cert_rules={"/": "any"}, accept_expired_certs=True)
    assert lenient.check("192.0.2.1", "/", cert.der, now=later)


def test_from_toml_matches_the_servers_config():
    chain = guard.Chain.from_toml(
        """
        [guard.acl]
        deny = ["192.0.2.66"]
        [guard.rate_limit]
        rate = 1.0
        burst = 1
        [[guard.cert_rules]]
        prefix = "/private/"
        require_cert = true
        """
    )
    assert chain.check("192.0.2.66").reason == "access_denied"
    assert chain.check("192.0.2.1", "/private/a", monotonic=0).reason == "cert_required"
    assert chain.check("192.0.2.1", "/", monotonic=0).reason == "rate_limited"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"allow": ["not-a-cidr"]},
        {"default": "maybe"},
        {"rate": -1.0},
        {"rate": 1.0, "burst": 0},
        {"global_rate": 5.0},
        {"cert_rules": {"/x/": "sometimes"}},
        {"cert_rules": {"/x/": ["sha256:zz"]}},
        {"cert_rules": {"/x/": []}},
        {"rate": 1.0, "ipv6_prefix": 200},
    ],
)
def test_bad_configuration_raises_guard_error(kwargs):
    with pytest.raises(guard.GuardError) as caught:
        guard.Chain(**kwargs)
    assert isinstance(caught.value, tessera.TesseraError)
    assert str(caught.value)


def test_bad_toml_and_bad_requests():
    with pytest.raises(guard.GuardError):
        guard.Chain.from_toml("[guard.acl\n")
    with pytest.raises(guard.GuardError):
        guard.Chain.from_toml("[guard]\nunknown = 1\n")
    chain = guard.Chain(cert_rules={"/": "any"})
    with pytest.raises(guard.GuardError):
        chain.check("999.1.1.1")
    with pytest.raises(guard.GuardError):
        chain.check("192.0.2.1", "/%zz")
    with pytest.raises(guard.GuardError):
        chain.check("192.0.2.1", "/", "sha256:nothex")
    with pytest.raises(tessera.TesseraError):
        chain.check("192.0.2.1", "/", b"not a certificate")
    with pytest.raises(ValueError):
        chain.check("192.0.2.1", "/", 42)
    with pytest.raises(ValueError):
        chain.check("192.0.2.1", monotonic=-1)


def test_no_address_and_mapped_addresses():
    chain = guard.Chain(rate=1.0, burst=1)
    assert chain.check(None, monotonic=0)
    assert chain.check(None, monotonic=0).reason == "rate_limited"
    assert chain.check("192.0.2.9", monotonic=0)
    assert chain.check("::ffff:192.0.2.9", monotonic=0).reason == "rate_limited"


def test_tracked_clients_stay_at_the_cap():
    chain = guard.Chain(rate=1.0, burst=5, max_clients=1000)
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    for index in range(5000):
        chain.check(str(ipaddress.IPv4Address(base + index)), monotonic=0)
    assert chain.tracked_clients <= 1000


def test_one_chain_shared_by_threads_counts_every_decision():
    chain = guard.Chain(rate=1.0, burst=1)

    def work(offset):
        for index in range(500):
            chain.check(f"10.{offset}.{index // 256}.{index % 256}", monotonic=0)
            chain.check(f"10.{offset}.{index // 256}.{index % 256}", monotonic=0)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert chain.allowed == 2000
    assert chain.denials["rate_limited"] == 2000


def test_ready_is_an_awaitable_already_done():
    import asyncio
    import collections.abc

    value = ("a", "tuple")
    ready = guard.Ready(value)
    assert ready.value is value
    assert repr(guard.Ready(1)) == "Ready(1)"
    assert isinstance(ready, collections.abc.Coroutine)
    assert asyncio.iscoroutine(ready)

    async def main():
        assert await ready is value
        assert await ready is value  # awaited again: the same value
        assert await asyncio.create_task(guard.Ready(2)) == 2
        assert await asyncio.gather(guard.Ready(3), guard.Ready(4)) == [3, 4]
        return "done"

    assert asyncio.run(main()) == "done"
    assert asyncio.run(guard.Ready(5)) == 5
    for _ in range(3):
        with pytest.raises(StopIteration) as stopped:
            ready.send(None)
        assert stopped.value.value is value
        # Raised from Python code the exception picks up frames; a shared
        # one must not collect them from raise to raise.
        assert stopped.value.__traceback__.tb_next is None
    with pytest.raises(KeyError):
        ready.throw(KeyError("x"))
    with pytest.raises(ValueError, match="old form"):
        ready.throw(ValueError, "old form")
    with pytest.raises(TypeError):
        ready.throw("not an exception")
    assert ready.close() is None


def test_async_check_answers_with_ready_awaitables():
    import asyncio

    converted = []

    def convert(decision):
        converted.append(decision.reason)
        return ("result", decision.reason, decision.retry_after_secs)

    chain = guard.Chain(deny=["192.0.2.66"], rate=0.001, burst=1, cert_rules={"/admin/": "any"})
    check = guard.AsyncCheck(chain, convert)
    # One conversion for each decision without a wait, made up front.
    assert sorted(converted, key=str) == sorted([None, *guard.DENIAL_REASONS[1:]], key=str)
    converted.clear()

    async def main():
        return [
            await check.process_request("gemini://h/", "192.0.2.1"),
            await check.process_request("gemini://h/", "192.0.2.66"),
            await check.process_request("gemini://h/admin/", "192.0.2.2"),
            await check.process_request("gemini://h/", "192.0.2.1"),
        ]

    allowed, denied, no_cert, limited = asyncio.run(main())
    assert allowed == ("result", None, None)
    assert denied == ("result", "access_denied", None)
    assert no_cert == ("result", "cert_required", None)
    assert limited[:2] == ("result", "rate_limited") and limited[2] >= 1
    assert converted == ["rate_limited"]  # only the decision with a wait was converted now
    assert check.process_request("/", "192.0.2.3") is check.process_request("/", "192.0.2.4")
    with pytest.raises(TypeError):
        check.process_request(None, "192.0.2.1")
    with pytest.raises(ZeroDivisionError):
        guard.AsyncCheck(chain, lambda decision: 1 / 0)
