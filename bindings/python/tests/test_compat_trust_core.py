"""tessera.compat.trust_core against the real trust-core 0.1.0: the same API
(names and signatures, module by module) and interop both ways."""

import inspect
import json
import socket
import threading
import time

import pytest

import tessera.compat.trust_core as ours
from tessera import trust

theirs = pytest.importorskip("trust_core", reason="trust-core 0.1.0 is not installed (pip install trust-core==0.1.0)")

SUBMODULES = ["engine", "proof", "keys", "wire", "errors"]


def _public_names(module):
    return getattr(module, "__all__", None) or [
        name for name in vars(module) if not name.startswith("_") and not inspect.ismodule(getattr(module, name))
    ]


@pytest.mark.parametrize("submodule", [None, *SUBMODULES])
def test_every_public_name_exists_with_the_same_signature(submodule):
    import importlib

    their_module = importlib.import_module("trust_core" + (f".{submodule}" if submodule else ""))
    our_module = importlib.import_module("tessera.compat.trust_core" + (f".{submodule}" if submodule else ""))
    for name in _public_names(their_module):
        their_object = getattr(their_module, name)
        if getattr(their_object, "__module__", "").startswith(("typing", "collections", "dataclasses", "__future__")):
            continue
        if inspect.ismodule(their_object) or name in {"annotations"}:
            continue
        assert hasattr(our_module, name), f"{their_module.__name__}.{name} is missing"
        our_object = getattr(our_module, name)
        if inspect.isfunction(their_object):
            assert _parameters(our_object) == _parameters(their_object), name
        elif inspect.isclass(their_object):
            for member, value in vars(their_object).items():
                if member.startswith("_") or member in {"seed", "biscuit_private_key"}:
                    continue
                assert hasattr(our_object, member), f"{name}.{member} is missing"
                if inspect.isfunction(value):
                    assert _parameters(getattr(our_object, member)) == _parameters(value), f"{name}.{member}"


def _parameters(function):
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_errors_are_one_family():
    assert issubclass(trust.Replayed, ours.TrustError)
    assert ours.errors.TrustError is ours.TrustError is trust.TrustError


def _mint(module, issuer, worker):
    return module.mint_biscuit(
        issuer,
        public_hex=worker.public_hex,
        holder_id="gpu-1",
        facts={"right": ["lease", "status"], "lane": ["transcribe"]},
        revocation_id="rev-1",
        expires_at=time.time() + 600,
    )


@pytest.mark.parametrize("minter, verifier", [("theirs", "ours"), ("ours", "theirs"), ("ours", "ours")])
def test_tokens_and_proofs_interoperate(minter, verifier):
    modules = {"theirs": theirs, "ours": ours}
    mint_side, verify_side = modules[minter], modules[verifier]
    seed = bytes(range(32))
    issuer = mint_side.IssuerKey(seed=seed)
    worker = mint_side.WorkerKey.generate()
    token = _mint(mint_side, issuer, worker)
    request = mint_side.RequestParts(method="POST", path="/lease", body=b'{"job":1}')
    now = time.time()
    proof = mint_side.make_proof(worker, token, request, timestamp=str(int(now)), nonce="n-1")
    parsed = verify_side.proof_from_headers(proof.headers())
    v_request = verify_side.RequestParts(method="POST", path="/lease", body=b'{"job":1}')
    token_object, identity = verify_side.authenticate(
        verify_side.IssuerKey(seed=seed).public_hex,
        parsed,
        v_request,
        now=now,
        revoked_ids=frozenset(),
        max_skew_seconds=300,
    )
    assert identity.holder_id == "gpu-1"
    assert identity.holder_public_hex == worker.public_hex
    assert identity.revocation_id == "rev-1"
    allow = "allow if req_right($r), right($r), req_lane($l), lane($l)"
    verify_side.check_policy(
        token_object, request_facts={"req_right": "lease", "req_lane": "transcribe"}, allow=allow, now=now
    )
    with pytest.raises(verify_side.TrustError):
        verify_side.check_policy(
            token_object, request_facts={"req_right": "admin", "req_lane": "transcribe"}, allow=allow, now=now
        )


def test_the_same_keys_give_the_same_public_keys_and_signatures():
    seed = bytes(range(32))
    assert ours.IssuerKey(seed=seed).public_hex == theirs.IssuerKey(seed=seed).public_hex
    assert ours.WorkerKey(seed=seed).sign(b"msg") == theirs.WorkerKey(seed=seed).sign(b"msg")
    request = dict(method="GET", path="/a", body=b"x")
    assert ours.RequestParts(**request).canonical(timestamp="1", nonce="n") == theirs.RequestParts(
        **request
    ).canonical(timestamp="1", nonce="n")
    assert ours.IssuerKey.from_secret_hex(seed.hex()).seed == seed
    with pytest.raises(ours.TrustError):
        ours.IssuerKey.from_secret_hex("zz")
    with pytest.raises(ours.TrustError):
        ours.WorkerKey(seed=b"short")
    assert seed.hex() not in repr(ours.IssuerKey(seed=seed))


def test_job_signatures_interoperate():
    seed = bytes(range(32))
    job = {"job_id": "j-1", "kind": "transcribe", "input": "s3://bucket/a.wav", "n": 3, "note": "é"}
    their_sig = theirs.sign_job(theirs.IssuerKey(seed=seed), job, worker_id="gpu-1")
    our_sig = ours.sign_job(ours.IssuerKey(seed=seed), job, worker_id="gpu-1")
    assert our_sig == their_sig
    public = theirs.IssuerKey(seed=seed).public_hex
    ours.verify_job(public, dict(job, sig=their_sig), worker_id="gpu-1")
    theirs.verify_job(public, dict(job, sig=our_sig), worker_id="gpu-1")
    with pytest.raises(ours.TrustError):
        ours.verify_job(public, dict(job, sig=their_sig), worker_id="gpu-2")
    with pytest.raises(ours.TrustError):
        ours.sign_job(ours.IssuerKey(seed=seed), {"x": float("nan")}, worker_id="w")


def test_what_trust_core_accepts_and_we_refuse():
    seed = bytes(range(32))
    issuer, worker = ours.IssuerKey(seed=seed), ours.WorkerKey.generate()
    request = ours.RequestParts(method="GET", path="/a", body=b"")
    now = time.time()

    def authenticate(token, nonce, when=now, skew=300, timestamp=None):
        proof = ours.make_proof(worker, token, request, timestamp=timestamp or str(int(when)), nonce=nonce)
        return ours.authenticate(
            issuer.public_hex, proof, request, now=when, revoked_ids=frozenset(), max_skew_seconds=skew
        )

    token = _mint(ours, issuer, worker)
    authenticate(token, "once")
    with pytest.raises(trust.Replayed):  # W4
        authenticate(token, "once")
    expired = ours.mint_biscuit(
        issuer, public_hex=worker.public_hex, holder_id="h", facts={}, revocation_id="r", expires_at=now - 10
    )
    with pytest.raises(trust.Expired):  # W3
        authenticate(expired, "e")
    with pytest.raises(ours.TrustError):  # W3: NaN skew
        authenticate(token, "nan", skew=float("nan"))
    with pytest.raises(trust.MalformedRequest):  # W6 (d)
        authenticate(token, "u", timestamp="1_700_000_000")
    with pytest.raises(trust.InvalidInput):  # W6 (a)
        ours.mint_biscuit(
            issuer, public_hex=worker.public_hex, holder_id="h", facts={"worker_key": ["x"]},
            revocation_id="r", expires_at=now + 60,
        )
    token_object, _ = authenticate(token, "shadow")
    with pytest.raises(trust.ConfigInvalid):  # W6 (b)
        ours.check_policy(token_object, request_facts={"right": "admin"}, allow="allow if right(\"admin\")", now=now)
    with pytest.raises(trust.Revoked):
        proof = ours.make_proof(worker, token, request, timestamp=str(int(now)), nonce="rev")
        ours.authenticate(
            issuer.public_hex, proof, request, now=now, revoked_ids=frozenset({"rev-1"}), max_skew_seconds=300
        )
    with pytest.raises(ours.TrustError):
        ours.check_policy(object(), request_facts={}, allow="allow if true", now=now)
    with pytest.raises(ours.TrustError):
        ours.proof_from_headers({"Authorization": "Biscuit a", "authorization": "Biscuit b"})


def _socket_pair():
    left, right = socket.socketpair()
    left.settimeout(10)
    right.settimeout(10)
    return left, right


def test_wire_frames_interoperate_and_the_decoder_is_strict():
    left, right = _socket_pair()
    try:
        theirs.wire.send_frame(left, {"op": "public_key", "n": 1})
        assert ours.wire.recv_frame(right) == {"op": "public_key", "n": 1}
        ours.wire.send_frame(left, {"op": "mint", "facts": {"a": ["é"]}})
        assert theirs.wire.recv_frame(right) == {"op": "mint", "facts": {"a": ["é"]}}
        for body in [b"", b"[1]", b"{\"a\": NaN}", b"{\"a\":1,\"a\":2}", b"\xef\xbb\xbf{}", b"\xff\xfe{}", b"{"]:
            left.sendall(ours.wire.FRAME_HEADER.pack(len(body)) + body)
            with pytest.raises(trust.SignerError):
                ours.wire.recv_frame(right)
        left.sendall(ours.wire.FRAME_HEADER.pack(ours.wire.MAX_FRAME + 1))
        with pytest.raises(trust.SignerError):
            ours.wire.recv_frame(right)
        left.sendall(b"\x00\x00")
        right.settimeout(0.2)
        with pytest.raises(trust.SignerError):  # a stalled peer: the timeout fires
            ours.wire.recv_frame(right)
    finally:
        left.close()
        right.close()
    assert ours.wire.family("/tmp/sock") == socket.AF_UNIX
    assert ours.wire.family(("127.0.0.1", 1)) == socket.AF_INET


def test_parallel_authenticate_from_threads():
    seed = bytes(range(32))
    issuer, worker = ours.IssuerKey(seed=seed), ours.WorkerKey.generate()
    token = _mint(ours, issuer, worker)
    request = ours.RequestParts(method="GET", path="/a", body=b"")
    now = time.time()
    errors = []

    def work(offset):
        for index in range(100):
            proof = ours.make_proof(worker, token, request, timestamp=str(int(now)), nonce=f"{offset}-{index}")
            try:
                ours.authenticate(
                    issuer.public_hex, proof, request, now=now, revoked_ids=frozenset(), max_skew_seconds=300
                )
            except ours.TrustError as error:  # pragma: no cover - reported below
                errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
