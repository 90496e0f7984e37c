"""trust-core 0.1.0's API on Tessera: change ``import trust_core`` to
``import tessera.compat.trust_core as trust_core`` (or
``from tessera.compat.trust_core import ...``), nothing else.

Tokens, proofs, job signatures and signer frames are byte-compatible with
trust-core in both directions. The submodules (``engine``, ``proof``,
``keys``, ``wire``, ``errors``) list what this version refuses that
trust-core accepts; every refusal is a :class:`TrustError` subclass.
"""

from __future__ import annotations

from .engine import (
    VerifiedIdentity,
    authenticate,
    check_policy,
    constant_time_equal,
    is_hex_key,
    mint_biscuit,
    sign_job,
    verify_job,
)
from .errors import TrustError
from .keys import IssuerKey, WorkerKey
from .proof import (
    RequestParts,
    WorkerProof,
    make_proof,
    proof_from_headers,
    proof_from_query,
)

__all__ = [
    "IssuerKey",
    "RequestParts",
    "TrustError",
    "VerifiedIdentity",
    "WorkerKey",
    "WorkerProof",
    "authenticate",
    "check_policy",
    "constant_time_equal",
    "is_hex_key",
    "make_proof",
    "mint_biscuit",
    "proof_from_headers",
    "proof_from_query",
    "sign_job",
    "verify_job",
]
