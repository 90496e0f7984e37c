"""Length-prefixed JSON frames (4-byte big-endian length, then a JSON
object), the signer sidecar's wire, decoded strictly: UTF-8 only, no BOM,
no ``NaN``/``Infinity``, no duplicate keys. Every failure is a
:class:`tessera.trust.SignerError`."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

from tessera._tessera import SignerError

FRAME_HEADER = struct.Struct(">I")


def send_frame(sock: socket.socket, payload: dict[str, Any], max_frame: int) -> None:
    """Sends ``payload`` as compact JSON in one frame."""
    try:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise SignerError(f"wire: payload is not JSON: {exc}") from exc
    if len(body) > max_frame:
        raise SignerError("wire: signer frame too large")
    try:
        sock.sendall(FRAME_HEADER.pack(len(body)) + body)
    except OSError as exc:
        raise SignerError(f"wire: {exc}") from exc


def recv_exact(sock: socket.socket, count: int) -> bytes:
    """Reads exactly ``count`` bytes; raises if the peer closes first."""
    out = bytearray()
    while len(out) < count:
        try:
            chunk = sock.recv(min(count - len(out), 65536))
        except OSError as exc:  # includes socket.timeout
            raise SignerError(f"wire: {exc}") from exc
        if not chunk:
            raise SignerError("wire: signer connection closed mid-frame")
        out.extend(chunk)
    return bytes(out)


def _refuse_constant(name: str) -> Any:
    raise SignerError(f"wire: {name} is not JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise SignerError(f"wire: duplicate key {key!r}")
        result[key] = value
    return result


def recv_frame(sock: socket.socket, max_frame: int) -> dict[str, Any]:
    """Reads one frame and returns its object body."""
    (length,) = FRAME_HEADER.unpack(recv_exact(sock, 4))
    if length > max_frame:
        raise SignerError("wire: signer frame too large")
    body = recv_exact(sock, length)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SignerError("wire: signer frame is not UTF-8") from exc
    if text.startswith("\ufeff"):
        raise SignerError("wire: signer frame starts with a byte-order mark")
    try:
        parsed = json.loads(text, object_pairs_hook=_object, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise SignerError(f"wire: signer frame is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise SignerError("wire: signer frame is not an object")
    return parsed
