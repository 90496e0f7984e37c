"""``trust_core.proof``: the canonical request string and the proof a holder sends.

Same API and wire format as trust-core 0.1.0 (v1 canonical string, the
``Authorization: Biscuit`` / ``X-EP-*`` headers, the ``token``/``sig``/``ts``/
``nonce`` query). Differences: header names that collide after lower-casing
are refused instead of the last one winning silently; errors are
:class:`tessera.trust.MalformedRequest` (a :class:`TrustError`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tessera import trust

from .errors import TrustError
from .keys import WorkerKey


@dataclass(frozen=True)
class RequestParts:
    """The request a proof binds to: method, path and the exact body bytes."""

    method: str
    path: str
    body: bytes

    def canonical(self, *, timestamp: str, nonce: str) -> bytes:
        """``method LF path LF hex(sha256(body)) LF timestamp LF nonce``, UTF-8."""
        body_hash = hashlib.sha256(self.body).hexdigest()
        return "\n".join((self.method, self.path, body_hash, timestamp, nonce)).encode("utf-8")


@dataclass(frozen=True)
class WorkerProof:
    """The token, the holder's signature (hex), the timestamp and the nonce."""

    token: str
    signature: str
    timestamp: str
    nonce: str

    def headers(self) -> dict[str, str]:
        """The HTTP headers carrying this proof."""
        return {
            "Authorization": f"Biscuit {self.token}",
            "X-EP-Signature": self.signature,
            "X-EP-Timestamp": self.timestamp,
            "X-EP-Nonce": self.nonce,
        }


def make_proof(
    worker: WorkerKey, token: str, request: RequestParts, *, timestamp: str, nonce: str
) -> WorkerProof:
    """Signs ``request`` with the holder key."""
    signature = worker.sign(request.canonical(timestamp=timestamp, nonce=nonce))
    return WorkerProof(token=token, signature=signature.hex(), timestamp=timestamp, nonce=nonce)


def _native(proof: trust.Proof) -> WorkerProof:
    return WorkerProof(
        token=proof.token, signature=proof.signature, timestamp=proof.timestamp, nonce=proof.nonce
    )


def proof_from_headers(headers: dict[str, str]) -> WorkerProof:
    """Reads the proof from request headers (names in any case)."""
    seen: set[str] = set()
    for name in headers:
        lowered = name.lower()
        if lowered in seen:
            raise trust.MalformedRequest(f"header {name!r} given twice")
        seen.add(lowered)
    return _native(trust.Proof.from_headers(dict(headers)))


def proof_from_query(query: dict[str, str]) -> WorkerProof:
    """Reads the proof from query parameters (``token``, ``sig``, ``ts``, ``nonce``)."""
    return _native(trust.Proof.from_query(dict(query)))


__all__ = [
    "RequestParts",
    "TrustError",
    "WorkerProof",
    "make_proof",
    "proof_from_headers",
    "proof_from_query",
]
