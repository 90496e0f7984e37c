#!/usr/bin/env python3
"""The guard benchmark's baseline: tlacacoca 0.3.0's middleware, measured the
way `tessera guard bench` measures ours, so both can run in the same run.

Prints one JSON object with the same keys as `tessera guard bench --json`.
Each rate is decisions per second on one core over about --seconds seconds.
Requires `pip install tlacacoca==0.3.0`.
"""

import argparse
import asyncio
import ipaddress
import json
import resource
import time

from tlacacoca.middleware import (
    AccessControl,
    AccessControlConfig,
    CertificateAuth,
    CertificateAuthConfig,
    CertificateAuthPathRule,
    MiddlewareChain,
    RateLimitConfig,
    RateLimiter,
)

URL = "gemini://localhost/public/index.gmi"


async def rate(seconds, step):
    """Calls `step(i)` until `seconds` pass; returns calls per second."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(256):
            await step(count)
            count += 1
    return count / (time.perf_counter() - start)


def prefixes(n):
    """n distinct, non-adjacent /24 networks from 10.0.0.0 on (never 192.0.2.0/24), as the Rust bench."""
    return [str(ipaddress.ip_network((0x0A000000 + (i << 9), 24))) for i in range(n)]


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(seconds, clients):
    out = {}
    limiter = RateLimiter(RateLimitConfig())
    warm = [f"198.51.{i // 256}.{i % 256}" for i in range(1000)]
    out["limiter_warm_per_s"] = await rate(seconds, lambda i: limiter.process_request(URL, warm[i % 1000]))
    fresh = RateLimiter(RateLimitConfig())
    out["limiter_new_key_per_s"] = await rate(
        seconds, lambda i: fresh.process_request(URL, str(ipaddress.IPv4Address(0x0B000000 + i)))
    )
    for n in (100, 1000, 100000):
        acl = AccessControl(AccessControlConfig(allow_list=prefixes(n), default_allow=True))
        out[f"acl_{n}_per_s"] = await rate(seconds, lambda i: acl.process_request(URL, "192.0.2.1"))
    chain = MiddlewareChain(
        [
            AccessControl(AccessControlConfig(allow_list=prefixes(99) + ["192.0.2.0/24"])),
            RateLimiter(RateLimitConfig(capacity=10**9, refill_rate=10**9)),
            CertificateAuth(
                CertificateAuthConfig(
                    path_rules=[
                        CertificateAuthPathRule(prefix="/admin/", require_cert=True),
                        CertificateAuthPathRule(prefix="/private/", require_cert=True),
                        CertificateAuthPathRule(prefix="/club/", allowed_fingerprints={"sha256:" + "ab" * 32}),
                    ]
                )
            ),
        ]
    )
    out["chain_per_s"] = await rate(seconds, lambda i: chain.process_request(URL, "192.0.2.1"))
    before = rss_mib()
    flood = RateLimiter(RateLimitConfig())
    for i in range(clients):
        await flood.process_request(URL, str(ipaddress.IPv4Address(0x0C000000 + i)))
    out["rss_growth_mib_1m_clients"] = rss_mib() - before
    out["tracked_clients_after_1m"] = len(getattr(flood, "buckets", getattr(flood, "_buckets", {})))
    print(json.dumps(out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--clients", type=int, default=1_000_000)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.clients))
