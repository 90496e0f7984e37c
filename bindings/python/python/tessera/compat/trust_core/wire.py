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

import json
import socket
import struct
from typing import Any

from tessera import trust

from .errors import TrustError

FRAME_HEADER = struct.Struct(">I")
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
    try:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise trust.SignerError(f"wire: payload is not JSON: {exc}") from exc
    if len(body) > MAX_FRAME:
        raise trust.SignerError("wire: signer frame too large")
    try:
        sock.sendall(FRAME_HEADER.pack(len(body)) + body)
    except OSError as exc:
        raise trust.SignerError(f"wire: {exc}") from exc


def recv_exact(sock: socket.socket, count: int) -> bytes:
    """Reads exactly ``count`` bytes; raises if the peer closes first."""
    out = bytearray()
    while len(out) < count:
        try:
            chunk = sock.recv(min(count - len(out), 65536))
        except OSError as exc:  # includes socket.timeout
            raise trust.SignerError(f"wire: {exc}") from exc
        if not chunk:
            raise trust.SignerError("wire: signer connection closed mid-frame")
        out.extend(chunk)
    return bytes(out)


def _refuse_constant(name: str) -> Any:
    raise trust.SignerError(f"wire: {name} is not JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise trust.SignerError(f"wire: duplicate key {key!r}")
        result[key] = value
    return result


def recv_frame(sock: socket.socket) -> dict[str, Any]:
    """Reads one frame and returns its object body."""
    (length,) = FRAME_HEADER.unpack(recv_exact(sock, 4))
    if length > MAX_FRAME:
        raise trust.SignerError("wire: signer frame too large")
    body = recv_exact(sock, length)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise trust.SignerError("wire: signer frame is not UTF-8") from exc
    if text.startswith("\ufeff"):
        raise trust.SignerError("wire: signer frame starts with a byte-order mark")
    try:
        parsed = json.loads(text, object_pairs_hook=_object, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise trust.SignerError(f"wire: signer frame is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise trust.SignerError("wire: signer frame is not an object")
    return parsed


__all__ = [
    "FRAME_HEADER",
    "MAX_FRAME",
    "TrustError",
    "family",
    "recv_exact",
    "recv_frame",
    "send_frame",
]
