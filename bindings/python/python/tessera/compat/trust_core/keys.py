"""``trust_core.keys``: the issuer and holder Ed25519 keys.

Same classes, fields and methods as trust-core 0.1.0. Differences:

- ``biscuit_private_key()`` returns a :class:`tessera.trust.SecretKey` (there
  is no ``biscuit_auth`` object to return; :func:`..engine.mint_biscuit` takes
  the key itself).
- ``repr()`` never shows the seed (trust-core's dataclass repr prints it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tessera import trust

from .errors import TrustError


@dataclass(frozen=True)
class _Key:
    seed: bytes = field(repr=False)
    _role = "key"

    def __post_init__(self) -> None:
        if not isinstance(self.seed, bytes) or len(self.seed) != 32:
            raise TrustError(f"{self._role} seed must be 32 bytes")

    def _secret(self) -> trust.SecretKey:
        return trust.SecretKey(self.seed.hex())

    @classmethod
    def generate(cls):
        """A fresh key."""
        return cls(seed=bytes.fromhex(trust.SecretKey.generate().hex))

    @classmethod
    def from_secret_hex(cls, secret_hex: str):
        """The key of a stored hex seed; anything malformed raises :class:`TrustError`."""
        try:
            seed = bytes.fromhex(secret_hex)
        except (ValueError, TypeError) as exc:
            raise TrustError(f"{cls._role} seed is not valid hex") from exc
        return cls(seed=seed)

    @property
    def secret_hex(self) -> str:
        """The private seed as hex. Handle with care."""
        return self.seed.hex()

    @property
    def public_hex(self) -> str:
        """The public key as 64 lower-case hex digits."""
        return self._secret().public.hex


@dataclass(frozen=True)
class IssuerKey(_Key):
    """The issuer's key: the token root and the job signer."""

    _role = "issuer"

    def biscuit_private_key(self) -> trust.SecretKey:
        """The key that signs tokens (a :class:`tessera.trust.SecretKey`)."""
        return self._secret()


@dataclass(frozen=True)
class WorkerKey(_Key):
    """A holder's key: signs each request (proof of possession)."""

    _role = "worker"

    def sign(self, message: bytes) -> bytes:
        """A detached Ed25519 signature (64 bytes) over ``message``."""
        return self._secret().sign(message)


__all__ = ["IssuerKey", "WorkerKey"]
