"""``trust_core.wire``: the signer sidecar's framing (4-byte big-endian length,
then a JSON object).

Same functions and constants as trust-core 0.1.0. Differences: the body
decoder is strict -- UTF-8 only (no BOM, no UTF-16/32), no ``NaN`` or
``Infinity``, no duplicate keys -- and every failure, including a zero-length
or non-JSON frame, is a :class:`tessera.trust.SignerError` (a
:class:`TrustError`). trust-core sets no socket timeouts; give the socket
one (``sock.settimeout``) and this module raises ``SignerError`` when it
fires.
"""

from __future__ import annotations

import socket
from typing import Any

from tessera import _framing, trust

from .errors import TrustError

FRAME_HEADER = _framing.FRAME_HEADER
MAX_FRAME = 1 << 20


def family(address: str | tuple[str, int]) -> int:
    """``AF_UNIX`` for a path, ``AF_INET`` for ``(host, port)``."""
    if isinstance(address, str):
        unix = getattr(socket, "AF_UNIX", None)
        if unix is None:
            raise trust.SignerError("Unix domain sockets are unavailable on this platform")
        return int(unix)
    return socket.AF_INET


def send_frame(sock: socket.socket, payload: dict[str, Any]) -> None:
    """Sends ``payload`` as compact JSON in one frame."""
    _framing.send_frame(sock, payload, MAX_FRAME)


def recv_exact(sock: socket.socket, count: int) -> bytes:
    """Reads exactly ``count`` bytes; raises if the peer closes first."""
    return _framing.recv_exact(sock, count)


def recv_frame(sock: socket.socket) -> dict[str, Any]:
    """Reads one frame and returns its object body."""
    return _framing.recv_frame(sock, MAX_FRAME)


__all__ = [
    "FRAME_HEADER",
    "MAX_FRAME",
    "TrustError",
    "family",
    "recv_exact",
    "recv_frame",
    "send_frame",
]
