import json
import threading
import time

import pytest

import tessera
from tessera import trust

ERRORS = {
    "malformed": trust.MalformedRequest,
    "token": trust.TokenInvalid,
    "identity": trust.IdentityInvalid,
    "revoked": trust.Revoked,
    "stale": trust.Stale,
    "pop": trust.PopFailed,
    "expired": trust.Expired,
    "policy": trust.PolicyDenied,
    "limits": trust.LimitsExceeded,
    "config": trust.ConfigInvalid,
}


def _key(vectors, name):
    return vectors["keys"][name]


def test_request_vectors_from_trust_core(trust_vectors):
    """Every request trust-core's vectors hold gets the outcome the vectors expect."""
    for case in trust_vectors["requests"]:
        issuer = _key(trust_vectors, case["issuer_public"])["public_hex"]
        verifier = trust.Verifier(
            issuer, max_skew=case["max_skew_seconds"], revoked=case["revoked_ids"]
        )
        if case["form"] == "headers":
            make = lambda: trust.Proof.from_headers(case["headers"])  # noqa: E731
        else:
            make = lambda: trust.Proof.from_query(case["query"])  # noqa: E731
        accept = case["tessera"]["accept"]
        try:
            proof = make()
            who = verifier.authenticate(
                proof, case["method"], case["path"], bytes.fromhex(case["body_hex"]), now=case["now"]
            )
            if case["policy"]:
                verifier.check_policy(
                    who,
                    case["policy"]["allow"],
                    list(case["policy"]["request_facts"].items()),
                    now=case["now"],
                )
        except trust.TrustError as error:
            kinds = [kind for kind, cls in ERRORS.items() if isinstance(error, cls)]
            assert kinds and kinds[0] in accept, (case["name"], error, accept)
            continue
        assert "ok" in accept, case["name"]
        identity = case["tessera"]["identity"]
        assert who.holder_id == identity["holder_id"]
        assert who.worker_key == identity["worker_key"]


def test_job_vectors_from_trust_core(trust_vectors):
    for case in trust_vectors["jobs"]:
        seed = _key(trust_vectors, case["issuer"])["seed_hex"]
        assert trust.job_message(case["job_json"], case["worker_id"]) == case["canonical_text"]
        signature = trust.sign_job(seed, case["job_json"], case["worker_id"])
        if "signature_hex" in case:
            assert signature == case["signature_hex"]
    for case in trust_vectors["job_verify"]:
        issuer = _key(trust_vectors, case["issuer_public"])["public_hex"]
        job = json.loads(case["job_json"])
        if case["signature_hex"] is not None:
            job["sig"] = case["signature_hex"]
        if case["tessera"]["accept"] == ["ok"]:
            trust.verify_job(issuer, json.dumps(job), case["worker_id"])
        else:
            with pytest.raises(trust.JobInvalid):
                trust.verify_job(issuer, json.dumps(job), case["worker_id"])


def test_mint_prove_authenticate_policy_round_trip():
    issuer, holder = trust.SecretKey.generate(), trust.SecretKey.generate()
    token = trust.mint(
        issuer,
        holder.public.hex,
        "worker-1",
        expires_at=time.time() + 600,
        facts={"right": ["lease", "status"], "lane": ["transcribe"]},
        revocation_id="rev-9",
    )
    verifier = trust.Verifier(issuer.public)
    proof = trust.prove(holder, token, "POST", "/lease", b'{"job":1}')
    assert set(proof.headers()) == {"Authorization", "X-EP-Signature", "X-EP-Timestamp", "X-EP-Nonce"}
    who = verifier.authenticate(trust.Proof.from_headers(proof.headers()), "POST", "/lease", b'{"job":1}')
    assert (who.holder_id, who.worker_key, who.revocation_id) == ("worker-1", holder.public.hex, "rev-9")
    allow = "allow if req_right($r), right($r)"
    verifier.check_policy(who, allow, [("req_right", "lease")])
    with pytest.raises(trust.PolicyDenied):
        verifier.check_policy(who, allow, [("req_right", "admin")])
    with pytest.raises(trust.ConfigInvalid):
        verifier.check_policy(who, "allow if (", [])
    with pytest.raises(trust.ConfigInvalid):
        verifier.check_policy(who, allow, [("right", "lease")])


def test_replay_tamper_stale_revoked_and_expired_are_refused():
    issuer, holder = trust.SecretKey.generate(), trust.SecretKey.generate()
    token = trust.mint(issuer, holder.public.hex, "w", expires_at=time.time() + 60, revocation_id="r1")
    verifier = trust.Verifier(issuer.public.hex)
    proof = trust.prove(holder, token, "GET", "/a")
    verifier.authenticate(proof, "GET", "/a")
    with pytest.raises(trust.Replayed):
        verifier.authenticate(proof, "GET", "/a")
    with pytest.raises(trust.PopFailed):
        verifier.authenticate(trust.prove(holder, token, "GET", "/a"), "GET", "/b")
    with pytest.raises(trust.Stale):
        verifier.authenticate(trust.prove(holder, token, "GET", "/a"), "GET", "/a", now=time.time() + 1000)
    with pytest.raises(trust.Revoked):
        trust.Verifier(issuer.public, revoked=["r1"]).authenticate(trust.prove(holder, token, "GET", "/a"), "GET", "/a")
    late = time.time() + 3600
    proof = trust.prove(holder, token, "GET", "/a", timestamp=str(int(late)))
    with pytest.raises(trust.Expired):
        verifier.authenticate(proof, "GET", "/a", now=late)
    other = trust.SecretKey.generate()
    with pytest.raises(trust.TokenInvalid):
        trust.Verifier(other.public).authenticate(trust.prove(holder, token, "GET", "/a"), "GET", "/a")


def test_v2_proofs_bind_authority_and_query_and_tokens_can_require_them():
    issuer, holder = trust.SecretKey.generate(), trust.SecretKey.generate()
    token = trust.mint(issuer, holder.public.hex, "w", expires_at=time.time() + 60, require_pop_v2=True)
    verifier = trust.Verifier(issuer.public)
    query = [("page", "2")]
    proof = trust.prove(holder, token, "GET", "/a", version=2, authority="svc.internal", query=query)
    assert proof.headers()["X-EP-Version"] == "2"
    verifier.authenticate(proof, "GET", "/a", authority="svc.internal", query=query)
    proof = trust.prove(holder, token, "GET", "/a", version=2, authority="svc.internal", query=query)
    with pytest.raises(trust.PopFailed):
        verifier.authenticate(proof, "GET", "/a", authority="other.internal", query=query)
    with pytest.raises(trust.PopFailed):
        verifier.authenticate(trust.prove(holder, token, "GET", "/a"), "GET", "/a")
    with pytest.raises(ValueError):
        trust.prove(holder, token, "GET", "/a", version=3)
    parts = trust.Proof(proof.token, proof.signature, proof.timestamp, proof.nonce, version=2)
    assert parts.headers() == proof.headers()
    with pytest.raises(ValueError):
        trust.Proof("t", "s", "1", "n", version=0)


def test_jobs_sign_and_verify_both_formats():
    issuer = trust.SecretKey.generate()
    job = {"job_id": "j-1", "kind": "transcribe", "weight": 1.5, "tags": ["a", "é"]}
    for format in ("v1", "v2"):
        signed = dict(job, sig=trust.sign_job(issuer, job, "w-1", format=format))
        trust.verify_job(issuer.public, signed, "w-1", format=format)
        with pytest.raises(trust.JobInvalid):
            trust.verify_job(issuer.public, signed, "w-2", format=format)
    v1 = dict(job, sig=trust.sign_job(issuer, job, "w-1"))
    with pytest.raises(trust.JobInvalid):
        trust.verify_job(issuer.public, v1, "w-1", format="v2")
    assert trust.job_message(job, "w").startswith('{"job":')
    assert trust.job_message(job, "w", format="v2").startswith("tessera-job/2\n")


def test_bad_input_raises_typed_errors():
    issuer = trust.SecretKey.generate()
    with pytest.raises(trust.TrustError):
        trust.SecretKey("zz")
    with pytest.raises(trust.TrustError):
        trust.PublicKey("00" * 31)
    with pytest.raises(trust.InvalidInput):
        trust.mint(issuer, "not-hex", "w", expires_at=time.time())
    with pytest.raises(trust.InvalidInput):
        trust.mint(issuer, issuer.public.hex, "w", expires_at=time.time(), facts={"bad name": ["x"]})
    with pytest.raises(TypeError):
        trust.mint(issuer, issuer.public.hex, "w", expires_at=time.time(), facts={"op": "read"})
    with pytest.raises(trust.JobInvalid):
        trust.sign_job(issuer, "[1, 2]", "w")
    with pytest.raises(trust.JobInvalid):
        trust.sign_job(issuer, "{not json", "w")
    with pytest.raises(trust.JobInvalid):
        trust.verify_job(issuer.public, {"job_id": "x"}, "w")
    with pytest.raises(ValueError):
        trust.sign_job(issuer, {}, "w", format="v9")
    with pytest.raises(trust.MalformedRequest):
        trust.Proof.from_headers({"Authorization": "Bearer x"})
    with pytest.raises(trust.MalformedRequest):
        trust.Proof.from_query({"token": "t"})
    with pytest.raises(ValueError):
        trust.Verifier(issuer.public, max_skew=float("inf"))
    assert issuer.hex not in repr(issuer)
    assert issubclass(trust.TrustError, tessera.TesseraError)
    assert trust.PublicKey(issuer.public.hex) == issuer.public


def test_threads_share_one_verifier():
    issuer, holder = trust.SecretKey.generate(), trust.SecretKey.generate()
    token = trust.mint(issuer, holder.public.hex, "w", expires_at=time.time() + 600)
    verifier = trust.Verifier(issuer.public)
    proofs = [trust.prove(holder, token, "GET", f"/{i}") for i in range(200)]
    failures = []

    def work(chunk):
        for index, proof in chunk:
            try:
                verifier.authenticate(proof, "GET", f"/{index}")
            except trust.TrustError as error:  # pragma: no cover - reported below
                failures.append(error)

    items = list(enumerate(proofs))
    threads = [threading.Thread(target=work, args=(items[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with pytest.raises(trust.Replayed):
        verifier.authenticate(proofs[0], "GET", "/0")


def test_signer_client_against_the_tessera_signer(tmp_path, tessera_cli):
    import queue
    import subprocess

    cli = tessera_cli
    if cli is None:
        pytest.skip("the tessera CLI is not built (cargo build): the signer client was not checked")
    issuer = trust.SecretKey.generate()
    key_file = tmp_path / "issuer.key"
    key_file.write_text(issuer.hex + "\n")
    key_file.chmod(0o600)
    signer = subprocess.Popen(
        [str(cli), "trust", "signer", "--issuer-key", str(key_file), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(signer.stdout.readline()), daemon=True).start()
        line = lines.get(timeout=30)
        assert line.startswith("listening on "), (line, signer.stderr.read() if signer.poll() is not None else "")
        host, port = line.split()[-1].rsplit(":", 1)
        holder = trust.SecretKey.generate()
        with trust.SignerClient((host, int(port)), timeout=10) as client:
            assert client.public_key() == issuer.public.hex
            token = client.mint(holder.public.hex, "w-1", expires_at=time.time() + 60, facts={"op": ["read"]})
            verifier = trust.Verifier(issuer.public)
            who = verifier.authenticate(trust.prove(holder, token, "GET", "/x"), "GET", "/x")
            verifier.check_policy(who, 'allow if op("read")')
            job = {"job_id": "j-1", "n": 2}
            for format in ("v1", "v2"):
                signature = client.sign_job(job, "w-1", format=format)
                trust.verify_job(issuer.public, dict(job, sig=signature), "w-1", format=format)
            with pytest.raises(trust.SignerError, match="bad_request"):
                client.mint("not-a-key", "w", expires_at=time.time())
            with pytest.raises(ValueError):
                client.sign_job(job, "w", format="v3")
            assert client.public_key() == issuer.public.hex  # the connection survives a refusal
    finally:
        signer.kill()
        signer.wait(timeout=30)
    with pytest.raises(trust.SignerError):
        trust.SignerClient(("127.0.0.1", int(port)), timeout=5)
