"""Benchmarks of the Python package against the projects it replaces, in one
run, interleaved (round by round) so machine noise hits both sides alike.

    cd bindings/python
    .venv/bin/maturin develop --release
    .venv/bin/pip install trust-core==0.1.0 tlacacoca==0.3.0
    .venv/bin/python bench/bench.py [--rounds 3]

Prints one table per benchmark: operations per second for each side and
their ratio, per round and the median. CPU seconds (process time) are used,
so a busy machine slows both sides without skewing the ratio much; the
rate-limiter memory figures are RSS deltas measured in fresh subprocesses.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import subprocess
import sys
import time


def per_cpu_second(function, count: int) -> float:
    """Calls ``function(i)`` ``count`` times; operations per CPU second."""
    start = time.process_time()
    for index in range(count):
        function(index)
    return count / max(time.process_time() - start, 1e-9)


def table(title: str, rows: list[tuple[float, float]], ours: str, theirs: str, unit: str = "ops/s") -> None:
    print(f"\n{title}")
    print(f"  round  {ours:>22}  {theirs:>22}  ratio")
    for number, (mine, real) in enumerate(rows, 1):
        print(f"  {number:5}  {mine:>16,.0f} {unit}  {real:>16,.0f} {unit}  {mine / real:5.2f}x")
    mine = statistics.median(r[0] for r in rows)
    real = statistics.median(r[1] for r in rows)
    print(f"  median {mine:>16,.0f} {unit}  {real:>16,.0f} {unit}  {mine / real:5.2f}x")


def trust_core_rounds(rounds: int) -> None:
    import trust_core as theirs

    import tessera.compat.trust_core as ours

    seed = bytes(range(32))
    now = time.time()
    setups = {}
    for name, module in (("ours", ours), ("theirs", theirs)):
        issuer, worker = module.IssuerKey(seed=seed), module.WorkerKey(seed=bytes(range(1, 33)))
        token = module.mint_biscuit(
            issuer, public_hex=worker.public_hex, holder_id="gpu-1",
            facts={"right": ["lease", "status"], "lane": ["transcribe"]},
            revocation_id="rev-1", expires_at=now + 3600,
        )
        request = module.RequestParts(method="POST", path="/lease", body=b'{"job":1}')
        setups[name] = (module, issuer, worker, token, request)

    def authenticate(name, count):
        module, issuer, worker, token, request = setups[name]
        # Fresh nonces: tessera refuses replays, trust-core does not check.
        proofs = [
            module.make_proof(worker, token, request, timestamp=str(int(now)), nonce=f"{name}-{time.monotonic_ns()}-{i}")
            for i in range(count)
        ]
        public = issuer.public_hex
        return per_cpu_second(
            lambda i: module.authenticate(
                public, proofs[i], request, now=now, revoked_ids=frozenset(), max_skew_seconds=300
            ),
            count,
        )

    def mint(name, count):
        module, issuer, worker, _, _ = setups[name]
        return per_cpu_second(
            lambda i: module.mint_biscuit(
                issuer, public_hex=worker.public_hex, holder_id="gpu-1",
                facts={"right": ["lease"]}, revocation_id=f"r{i}", expires_at=now + 3600,
            ),
            count,
        )

    def prove(name, count):
        module, _, worker, token, request = setups[name]
        return per_cpu_second(
            lambda i: module.make_proof(worker, token, request, timestamp=str(int(now)), nonce=str(i)),
            count,
        )

    for title, function, count in (
        ("trust_core.authenticate (token + proof of possession)", authenticate, 3000),
        ("trust_core.mint_biscuit", mint, 2000),
        ("trust_core.make_proof", prove, 5000),
    ):
        rows = [(function("ours", count), function("theirs", count)) for _ in range(rounds)]
        table(title, rows, "tessera.compat", "trust-core 0.1.0")


def middleware_rounds(rounds: int) -> None:
    import tlacacoca as theirs

    import tessera.compat.tlacacoca as ours

    admin = "sha256:" + "ab" * 32

    def chain(module):
        return module.MiddlewareChain(
            [
                module.AccessControl(module.AccessControlConfig(deny_list=["198.51.100.0/24"])),
                module.RateLimiter(module.RateLimitConfig(capacity=10**9, refill_rate=1e9)),
                module.CertificateAuth(
                    module.CertificateAuthConfig([module.CertificateAuthPathRule("/admin/", True, {admin})])
                ),
            ]
        )

    chains = {"ours": chain(ours), "theirs": chain(theirs)}
    count = 100_000

    def run(name):
        process = chains[name].process_request

        async def loop():
            start = time.process_time()
            for index in range(count):
                await process("gemini://example.org/admin/page.gmi", "192.0.2.1", admin)
            return count / (time.process_time() - start)

        return asyncio.run(loop())

    rows = [(run("ours"), run("theirs")) for _ in range(rounds)]
    table("MiddlewareChain.process_request (ACL + rate limit + certificate rule, allowed)", rows,
          "tessera.compat", "tlacacoca 0.3.0")


MEMORY_CHILD = """
import asyncio, ipaddress, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
which, clients = sys.argv[1], int(sys.argv[2])
if which == "ours":
    import tessera.compat.tlacacoca as m
else:
    import tlacacoca as m
base = int(ipaddress.IPv4Address("10.0.0.0"))
addresses = [str(ipaddress.IPv4Address(base + i)) for i in range(clients)]
before = rss()
limiter = m.RateLimiter(m.RateLimitConfig(capacity=10, refill_rate=1.0))
async def fill():
    for address in addresses:
        await limiter.process_request("/", address)
asyncio.run(fill())
print(rss() - before)
"""


def memory(rounds: int, clients: int) -> None:
    print(f"\nRateLimiter memory after {clients:,} distinct clients (RSS growth, fresh process each)")
    print("  round        tessera.compat (capped at 65,536 clients)        tlacacoca 0.3.0")
    for number in range(1, rounds + 1):
        sizes = []
        for which in ("ours", "theirs"):
            out = subprocess.run(
                [sys.executable, "-c", MEMORY_CHILD, which, str(clients)],
                capture_output=True, text=True, check=True, timeout=900,
            ).stdout
            sizes.append(int(out))
        print(f"  {number:5}  {sizes[0] / 2**20:>10.1f} MiB {'':>33} {sizes[1] / 2**20:>10.1f} MiB")


def pow_rounds(rounds: int) -> None:
    from tessera import pow

    token, bits = "benchmarktoken", 22

    def ours():
        cpu = time.process_time()
        solution = pow.solve(token, bits, threads=1)
        return solution.candidates / max(time.process_time() - cpu, 1e-9)

    def hashlib_loop():
        prefix = hashlib.sha256(token.encode())
        count = 300_000
        start = time.process_time()
        for index in range(count):
            digest = prefix.copy()
            digest.update(str(index).encode())
            digest.digest()
        return count / (time.process_time() - start)

    pow.solve(token, 8, threads=1)  # the first search measures the kernels once
    rows = [(ours(), hashlib_loop()) for _ in range(rounds)]
    table("pow.solve candidates per CPU second, one thread, vs a hashlib loop (no C++ helper here)",
          rows, "tessera.pow", "hashlib", unit="H/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.rounds} rounds")
    trust_core_rounds(args.rounds)
    middleware_rounds(args.rounds)
    pow_rounds(args.rounds)
    memory(1, args.clients)


if __name__ == "__main__":
    main()
