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
share between threads. :class:`ClientIds` derives the keyed ids Tessera
logs instead of addresses.
"""

from tessera._tessera import Chain, ClientIds, Decision, GuardError

#: Every ``Decision.reason`` a denial can carry.
DENIAL_REASONS = (
    "rate_limited",
    "access_denied",
    "cert_required",
    "cert_not_authorized",
    "cert_not_valid",
)

__all__ = ["Chain", "ClientIds", "DENIAL_REASONS", "Decision", "GuardError"]
