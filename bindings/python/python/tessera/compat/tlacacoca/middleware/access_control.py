"""``tlacacoca.middleware.access_control``: allow and deny lists of addresses
and CIDRs (deny wins; with an allow list, only it is allowed).

Difference from tlacacoca 0.3.0: an entry with host bits set
(``192.168.1.100/24``) raises ``ValueError`` instead of silently widening to
the whole network. Client text that is not an address is denied, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import _GuardMiddleware


@dataclass
class AccessControlConfig:
    """``allow_list`` / ``deny_list`` of addresses or CIDRs; ``default_allow``
    applies when there is no allow list."""

    allow_list: list[str] | None = None
    deny_list: list[str] | None = None
    default_allow: bool = True


class AccessControl(_GuardMiddleware):
    """IP-based access control."""

    _STAGE = 0

    _CONFIG = AccessControlConfig

    def __init__(self, config: AccessControlConfig | None = None):
        super().__init__(config)

    def _settings(self) -> dict:
        return {
            "allow": list(self.config.allow_list or []) or None,
            "deny": list(self.config.deny_list or []),
            "default": "allow" if self.config.default_allow else "deny",
        }


__all__ = ["AccessControl", "AccessControlConfig"]
