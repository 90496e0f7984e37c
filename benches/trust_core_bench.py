#!/usr/bin/env python3
"""The trust benchmark's baseline: trust-core 0.1.0 measured the way
`tessera trust bench` measures ours, so both run in the same command.
Prints one JSON object of operations per second (one core).
Requires `pip install trust-core==0.1.0`.
"""

import argparse
import json
import time

import trust_core as tc

NOW = 1_700_000_000
ALLOW = "allow if req_right($r), right($r)"


def rate(seconds, op):
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(32):
            op(count)
            count += 1
    return count / (time.perf_counter() - start)


def main(seconds):
    issuer = tc.IssuerKey(bytes(range(32)))
    worker = tc.WorkerKey(bytes(range(1, 33)))
    facts = {"right": ["lease", "status"], "lane": ["transcribe"]}
    mint = lambda i: tc.mint_biscuit(issuer, public_hex=worker.public_hex, holder_id="gpu-1", facts=facts, revocation_id="rev-1", expires_at=NOW + 3600)
    token = mint(0)
    request = tc.RequestParts("POST", "/lease", b'{"job":1}')
    prove = lambda i: tc.make_proof(worker, token, request, timestamp=str(NOW), nonce=f"n-{i}")
    proof = prove(0)

    def authenticate(i):
        return tc.authenticate(issuer.public_hex, proof, request, now=NOW, revoked_ids=frozenset(), max_skew_seconds=300)

    def with_policy(i):
        parsed, _ = authenticate(i)
        tc.check_policy(parsed, request_facts={"req_right": "lease"}, allow=ALLOW, now=NOW)

    job = {"job_id": "j-1", "kind": "transcribe", "input": "s3://bucket/a.wav"}
    job["sig"] = tc.sign_job(issuer, dict(job), worker_id="gpu-1")
    verify_job = lambda i: tc.verify_job(issuer.public_hex, job, worker_id="gpu-1")
    print(json.dumps({
        "mint_per_s": rate(seconds, mint),
        "prove_per_s": rate(seconds, prove),
        "authenticate_per_s": rate(seconds, authenticate),
        "authenticate_policy_per_s": rate(seconds, with_policy),
        "verify_job_per_s": rate(seconds, verify_job),
    }))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0)
    main(parser.parse_args().seconds)
