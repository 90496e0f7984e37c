"""``trust_core.engine``: mint, authenticate, check_policy, job signatures.

Same functions, signatures and return shapes as trust-core 0.1.0, running
on tessera-trust. Tokens, proofs and job signatures are byte-compatible in
both directions. What trust-core accepts and this module refuses (each
refusal is a :class:`TrustError` subclass naming the check):

- a replayed nonce within the skew window (``Replayed``; trust-core keeps no
  nonce cache): one cache per (issuer key, skew) in this process;
- an expired token in ``authenticate`` (``Expired``; trust-core only notices
  in ``check_policy``), and a NaN or infinite ``now`` or skew;
- a token with two ``worker_key``/``revocation``/``worker_id`` facts, a
  request fact that names a token predicate or a reserved one, reserved or
  non-ASCII predicate names in ``mint_biscuit``, a holder key that is not
  64 hex digits, timestamps Python's ``float()`` reads but the wire grammar
  does not (``1_700_000_000``), signatures of the wrong length;
- Datalog over the limits (1000 facts, 100 iterations, 50 ms), tokens over
  16 KiB or 4 blocks; a job holding ``NaN`` or ``Infinity``.

``authenticate`` returns ``(token, identity)`` as trust-core does; the token
is an opaque object for :func:`check_policy`, not a ``biscuit_auth.Biscuit``.
"""

from __future__ import annotations

import hmac
import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tessera import trust

from .errors import TrustError
from .keys import IssuerKey
from .proof import RequestParts, WorkerProof

#: Verifiers (each with its token and nonce caches) kept per (issuer key, skew).
_MAX_VERIFIERS = 64
_verifiers: dict[tuple[str, float], trust.Verifier] = {}
_verifiers_lock = threading.Lock()


def _verifier(issuer_public_hex: str, max_skew_seconds: float) -> trust.Verifier:
    if not isinstance(max_skew_seconds, (int, float)) or not math.isfinite(max_skew_seconds):
        raise trust.ConfigInvalid("config: max_skew_seconds must be a finite number")
    if max_skew_seconds < 0:
        raise trust.ConfigInvalid("config: max_skew_seconds must not be negative")
    key = (issuer_public_hex, float(max_skew_seconds))
    verifier = _verifiers.get(key)
    if verifier is None:
        with _verifiers_lock:
            verifier = _verifiers.get(key)
            if verifier is None:
                if len(_verifiers) >= _MAX_VERIFIERS:
                    _verifiers.clear()
                verifier = trust.Verifier(issuer_public_hex, max_skew=key[1])
                _verifiers[key] = verifier
    return verifier


def mint_biscuit(
    issuer: IssuerKey,
    *,
    public_hex: str,
    holder_id: str,
    facts: Mapping[str, Sequence[str]],
    revocation_id: str,
    expires_at: float,
) -> str:
    """Mints a token binding ``public_hex`` with ``facts``, ``revocation_id`` and an expiry."""
    return trust.mint(
        issuer.secret_hex,
        public_hex,
        holder_id,
        expires_at=expires_at,
        facts=facts,
        revocation_id=revocation_id,
    )


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who sent an authenticated request (identifiers, never capabilities)."""

    holder_id: str
    holder_public_hex: str
    revocation_id: str


class _Token:
    """An authenticated token, for :func:`check_policy`."""

    __slots__ = ("_authenticated", "_verifier")

    def __init__(self, verifier: trust.Verifier, authenticated: trust.Authenticated) -> None:
        self._verifier = verifier
        self._authenticated = authenticated

    def __repr__(self) -> str:
        return f"<authenticated token of {self._authenticated.holder_id!r}>"


def authenticate(
    issuer_public_hex: str,
    proof: WorkerProof,
    request: RequestParts,
    *,
    now: float,
    revoked_ids: frozenset[str],
    max_skew_seconds: float,
) -> tuple[object, VerifiedIdentity]:
    """Authenticates a request; returns ``(token, identity)`` for :func:`check_policy`."""
    verifier = _verifier(issuer_public_hex, max_skew_seconds)
    native = trust.Proof(proof.token, proof.signature, proof.timestamp, proof.nonce)
    authenticated = verifier.authenticate(
        native, request.method, request.path, request.body, now=now
    )
    if authenticated.revocation_id in revoked_ids:
        raise trust.Revoked("revoked: worker credential is revoked")
    identity = VerifiedIdentity(
        holder_id=authenticated.holder_id,
        holder_public_hex=authenticated.worker_key,
        revocation_id=authenticated.revocation_id,
    )
    return _Token(verifier, authenticated), identity


def check_policy(
    token: object, *, request_facts: Mapping[str, str], allow: str, now: float
) -> None:
    """Runs the ``allow`` policy against the token and ``request_facts`` at ``now``."""
    if not isinstance(token, _Token):
        raise trust.ConfigInvalid("config: check_policy takes the token authenticate returned")
    token._verifier.check_policy(
        token._authenticated, allow, list(request_facts.items()), now=now
    )


def _job_text(job: dict[str, object]) -> str:
    if not isinstance(job, dict):
        raise trust.JobInvalid("job: a job is a dict")
    try:
        return json.dumps(job, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise trust.JobInvalid(f"job: not JSON: {exc}") from exc


def sign_job(issuer: IssuerKey, job: dict[str, object], *, worker_id: str) -> str:
    """Signs ``job`` for ``worker_id``; returns the hex signature for its ``sig`` field."""
    return trust.sign_job(issuer.secret_hex, _job_text(job), worker_id)


def verify_job(issuer_public_hex: str, job: dict[str, object], *, worker_id: str) -> None:
    """Checks a job's ``sig`` against the pinned issuer key."""
    trust.verify_job(issuer_public_hex, _job_text(job), worker_id)


def is_hex_key(value: str) -> bool:
    """Whether ``value`` is exactly a 32-byte (64-hex-digit) key."""
    if len(value) != 64:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def constant_time_equal(left: str, right: str) -> bool:
    """A constant-time string comparison."""
    return hmac.compare_digest(left, right)


__all__ = [
    "VerifiedIdentity",
    "authenticate",
    "check_policy",
    "constant_time_equal",
    "is_hex_key",
    "mint_biscuit",
    "sign_job",
    "verify_job",
]
