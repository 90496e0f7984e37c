import hashlib
import threading
import time

import pytest

import tessera
from tessera import pow


def trailing_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    if value == 0:
        return len(digest) * 8
    return (value & -value).bit_length() - 1


def test_solve_finds_a_suffix_hashlib_agrees_with():
    solution = pow.solve("tessera-token", 14, threads=2)
    digest = hashlib.sha256(("tessera-token" + solution.suffix).encode()).digest()
    assert trailing_zero_bits(digest) >= 14
    assert pow.verify("tessera-token", 14, solution.suffix)
    assert solution.candidates >= 1


def test_verify_refuses_a_wrong_suffix():
    solution = pow.solve("abc", 12)
    wrong = solution.suffix + "x"
    expected = trailing_zero_bits(hashlib.sha256(("abc" + wrong).encode()).digest()) >= 12
    assert pow.verify("abc", 12, wrong) is expected
    assert pow.verify("abc", 0, "anything")


@pytest.mark.parametrize(
    "token, bits",
    [("", 8), ("has space", 8), ("x" * 129, 8), ("ok", 65)],
)
def test_bad_puzzles_raise_pow_error(token, bits):
    with pytest.raises(pow.PowError):
        pow.solve(token, bits)
    with pytest.raises(pow.PowError):
        pow.verify(token, bits, "a")


def test_bad_search_options_raise_value_error():
    with pytest.raises(ValueError):
        pow.solve("ok", 4, threads=0)
    with pytest.raises(ValueError):
        pow.solve("ok", 4, timeout=-1)
    with pytest.raises(ValueError):
        pow.solve("ok", 4, timeout=float("nan"))
    with pytest.raises(ValueError):
        pow.solve("ok", 4, progress_interval=0)
    with pytest.raises(TypeError):
        pow.solve("ok", "four")


def test_timeout_raises_search_timeout():
    with pytest.raises(pow.SearchTimeout) as caught:
        pow.solve("ok", 64, timeout=0.2)
    assert isinstance(caught.value, tessera.TesseraError)


def test_cancel_from_another_thread_stops_the_search():
    token = pow.CancelToken()
    assert not token.cancelled
    started = threading.Event()

    def progress(tried):
        started.set()

    def cancel_when_running():
        started.wait(30)
        token.cancel()

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    try:
        with pytest.raises(pow.SearchCancelled):
            pow.solve("ok", 64, cancel=token, progress=progress, progress_interval=0.05, timeout=60)
    finally:
        canceller.join()
    assert token.cancelled


def test_a_cancelled_token_stops_the_next_search_at_once():
    token = pow.CancelToken()
    token.cancel()
    with pytest.raises(pow.SearchCancelled):
        pow.solve("ok", 64, cancel=token, timeout=60)


def test_progress_callback_sees_growing_counts_and_can_stop_the_search():
    seen = []

    class Enough(Exception):
        pass

    def progress(tried):
        seen.append(tried)
        if len(seen) >= 3:
            raise Enough

    with pytest.raises(Enough):
        pow.solve("ok", 64, progress=progress, progress_interval=0.05, timeout=60)
    assert len(seen) == 3
    assert seen == sorted(seen)


def test_other_threads_run_while_a_search_holds_no_gil():
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        with pytest.raises(pow.SearchTimeout):
            pow.solve("ok", 64, threads=1, timeout=0.3)
    finally:
        stop.set()
        thread.join()
    assert len(ticks) > 10


def test_searches_in_parallel_threads_each_get_their_answer():
    results = {}

    def work(index):
        token = f"thread-{index}"
        results[index] = (token, pow.solve(token, 10, threads=1).suffix)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6
    for token, suffix in results.values():
        assert pow.verify(token, 10, suffix)


def test_kernels_always_include_portable():
    kernels = pow.kernels()
    assert "portable" in kernels


def test_hashcash_mint_and_verify_round_trip():
    stamp = pow.mint_stamp("Alice@Example.org", 10)
    assert stamp.startswith("1:10:")
    digest = int.from_bytes(hashlib.sha1(stamp.encode()).digest(), "big")
    assert digest >> (160 - 10) == 0
    verified = pow.verify_stamp(stamp, "alice@example.org", 10)
    assert verified.text == stamp
    assert verified.bits == 10
    assert verified.resource == "alice@example.org"
    assert verified.expires_at > verified.date


def test_hashcash_refuses_wrong_resource_too_few_bits_and_garbage():
    stamp = pow.mint_stamp("bob", 8)
    with pytest.raises(pow.InvalidStamp):
        pow.verify_stamp(stamp, "carol", 8)
    with pytest.raises(pow.InvalidStamp):
        pow.verify_stamp(stamp, "bob", 40)
    for garbage in ["", "1:8", "x" * 5000, "1:8:999999:bob::a:b"]:
        with pytest.raises(pow.InvalidStamp):
            pow.verify_stamp(garbage, "bob", 8)


def test_hashcash_expiry_follows_now():
    stamp = pow.mint_stamp("bob", 8, now=1_700_000_000)
    pow.verify_stamp(stamp, "bob", 8, now=1_700_000_000 + 86400)
    with pytest.raises(pow.InvalidStamp):
        pow.verify_stamp(stamp, "bob", 8, now=1_700_000_000 + 40 * 86400)
    pow.verify_stamp(stamp, "bob", 8, now=1_700_000_000 + 40 * 86400, expiry=0)


def test_hashcash_bad_mint_input():
    with pytest.raises(pow.PowError):
        pow.mint_stamp("", 8)
    with pytest.raises(pow.PowError):
        pow.mint_stamp("a:b", 8)
    with pytest.raises(pow.PowError):
        pow.mint_stamp("ok", 61)


def test_spent_stamps_refuse_a_second_use_in_memory_and_on_disk(tmp_path):
    stamp = pow.mint_stamp("bob", 8)
    memory = pow.SpentStamps()
    pow.verify_stamp(stamp, "bob", 8, spent=memory)
    with pytest.raises(pow.StampSpent):
        pow.verify_stamp(stamp, "bob", 8, spent=memory)

    path = tmp_path / "spent.sqlite"
    pow.verify_stamp(stamp, "bob", 8, spent=pow.SpentStamps(path))
    # Another process (here: another handle) sees the same file.
    with pytest.raises(pow.StampSpent):
        pow.verify_stamp(stamp, "bob", 8, spent=pow.SpentStamps(str(path)))


def test_spent_stamps_bounded_in_memory():
    spent = pow.SpentStamps(capacity=2)
    for resource in ("a", "b"):
        pow.verify_stamp(pow.mint_stamp(resource, 4), resource, 4, spent=spent)
    with pytest.raises(pow.PowError):
        pow.verify_stamp(pow.mint_stamp("c", 4), "c", 4, spent=spent)
    with pytest.raises(ValueError):
        pow.SpentStamps(capacity=0)
    with pytest.raises(pow.PowError):
        pow.SpentStamps("/nonexistent-dir/x/spent.sqlite")


def test_challenge_issue_solve_verify():
    challenge = pow.Challenge.issue(10, ttl=60)
    nonce = challenge.solve("GET /resource")
    challenge.verify("GET /resource", nonce)
    same = pow.Challenge.parse(challenge.text)
    assert same.text == challenge.text == str(challenge)
    assert same.bits == 10
    same.verify("GET /resource", nonce)
    # The nonce is bound to its context: it fails for others (each passes by
    # chance with probability 2^-10; all eight with 2^-80).
    refused = 0
    for index in range(8):
        try:
            challenge.verify(f"GET /other-{index}", nonce)
        except pow.InvalidChallenge:
            refused += 1
    assert refused >= 1


def test_challenge_expires_and_refuses_bad_text():
    challenge = pow.Challenge.issue(4, ttl=10, now=1_700_000_000)
    nonce = challenge.solve("ctx")
    challenge.verify("ctx", nonce, now=1_700_000_005)
    with pytest.raises(pow.InvalidChallenge):
        challenge.verify("ctx", nonce, now=1_700_000_011)
    for text in ["", "v1", "v2.00.1.1", "v1.zz.1.1", "v1." + "0" * 32 + ".x.1", "v1." + "0" * 32 + ".1.999"]:
        with pytest.raises(pow.PowError):
            pow.Challenge.parse(text)
    with pytest.raises(pow.InvalidChallenge):
        challenge.verify("x" * 2000, nonce)
