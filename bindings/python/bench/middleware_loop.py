"""One loop of awaited ``MiddlewareChain.process_request`` calls, the bench's
chain and arguments, for counting instructions per call:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/middleware_loop.py --calls 200000
    # minus the same with --calls 0, divided by 200,000; add --theirs for tlacacoca
"""

from __future__ import annotations

import argparse
import asyncio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--theirs", action="store_true", help="tlacacoca 0.3.0 instead of tessera.compat")
    args = parser.parse_args()
    if args.theirs:
        import tlacacoca as module
    else:
        import tessera.compat.tlacacoca as module
    admin = "sha256:" + "ab" * 32
    chain = module.MiddlewareChain(
        [
            module.AccessControl(module.AccessControlConfig(deny_list=["198.51.100.0/24"])),
            module.RateLimiter(module.RateLimitConfig(capacity=10**9, refill_rate=1e9)),
            module.CertificateAuth(
                module.CertificateAuthConfig([module.CertificateAuthPathRule("/admin/", True, {admin})])
            ),
        ]
    )

    async def loop() -> None:
        process = chain.process_request
        for _ in range(args.calls):
            await process("gemini://example.org/admin/page.gmi", "192.0.2.1", admin)

    asyncio.run(loop())


if __name__ == "__main__":
    main()
