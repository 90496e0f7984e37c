"""``tlacacoca.logging.structured``: the structlog processor that keeps
client addresses out of logs.

Difference from tlacacoca 0.3.0: tlacacoca writes the first 12 hex digits of
an unkeyed SHA-256 of the address, which anyone can reverse by hashing the
IPv4 space. This processor writes Tessera's keyed client id (HMAC-SHA-256
under a secret key, 16 hex digits, the id Tessera's servers log), under the
same ``client_ip_hash`` field. The key is random per process unless
:func:`set_log_key` or :func:`set_log_key_file` gives a persistent one (ids
then stay stable across restarts). Text that is not an address is written
as ``"invalid"``.
"""

from __future__ import annotations

import os
from typing import Any

from tessera import guard

_ids = guard.ClientIds()


def set_log_key(key: bytes, *, daily: bool = False) -> None:
    """Uses ``key`` (32 bytes) for client ids; ``daily`` rotates them every UTC day."""
    global _ids
    _ids = guard.ClientIds(key, daily=daily)


def set_log_key_file(path: str | os.PathLike[str], *, daily: bool = False) -> None:
    """Uses the key in ``path`` (created 0600 with a random key when missing)."""
    global _ids
    _ids = guard.ClientIds.from_key_file(path, daily=daily)


def hash_ip_processor(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Replaces ``client_ip`` with ``client_ip_hash``, the keyed client id."""
    if "client_ip" in event_dict:
        ip = event_dict["client_ip"]
        if ip and ip != "unknown":
            try:
                event_dict["client_ip_hash"] = _ids.id(str(ip))
            except guard.GuardError:
                event_dict["client_ip_hash"] = "invalid"
            del event_dict["client_ip"]
    return event_dict


__all__ = ["hash_ip_processor", "set_log_key", "set_log_key_file"]
