"""The admission chain every Tessera server runs: ACL, then a per-client
GCRA rate limit, then certificate rules -- the first denial wins.

>>> from tessera.guard import Chain
>>> chain = Chain(deny=["192.0.2.66"], rate=1.0, burst=2,
...               cert_rules={"/admin/": "any"})
>>> bool(chain.check("192.0.2.1", "/"))
True
>>> chain.check("192.0.2.66").reason
'access_denied'
>>> chain.check("192.0.2.1", "/admin/").reason
'cert_required'

A decision takes well under a microsecond of Rust; the chain is safe to
share between threads. :class:`AsyncCheck` answers ``async`` callers with
:class:`Ready` awaitables, without a coroutine per call. :class:`ClientIds`
derives the keyed ids Tessera logs instead of addresses;
:func:`parse_proxy_header` reads the PROXY protocol header a relay sends.
"""

import collections.abc

from tessera._tessera import (
    AsyncCheck,
    Chain,
    ClientIds,
    Decision,
    GuardError,
    ProxyHeader,
    Ready,
    parse_proxy_header,
)

# A Ready has a coroutine's methods; registered, asyncio.create_task takes it.
collections.abc.Coroutine.register(Ready)

#: Every ``Decision.reason`` a denial can carry.
DENIAL_REASONS = (
    "rate_limited",
    "access_denied",
    "cert_required",
    "cert_not_authorized",
    "cert_not_valid",
)

__all__ = [
    "AsyncCheck",
    "Chain",
    "ClientIds",
    "DENIAL_REASONS",
    "Decision",
    "GuardError",
    "ProxyHeader",
    "Ready",
    "parse_proxy_header",
]
