"""``tlacacoca.middleware.certificate_auth``: client-certificate rules per path prefix.

Differences from tlacacoca 0.3.0, each closing a bypass:

- The most specific matching prefix wins, not the first rule listed (a broad
  ``/`` rule listed first no longer shadows a stricter ``/admin/`` rule).
- Paths are canonicalised before matching (``%2e``, ``.``/``..`` segments and
  duplicate slashes cannot step around a prefix), and prefixes match on
  segment boundaries (``/admin`` does not cover ``/administrator``). A path
  with a broken percent-escape is refused (``access_denied``).
- Fingerprints compare as values (``sha256:AB..`` equals ``sha256:ab..``,
  colon pairs and bare hex accepted); a listed entry that is not a SHA-256
  fingerprint, or an empty list, raises ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import _GuardMiddleware


@dataclass
class CertificateAuthPathRule:
    """What ``prefix`` requires: nothing, any certificate, or a listed one."""

    prefix: str
    require_cert: bool = False
    allowed_fingerprints: set[str] | None = None


@dataclass
class CertificateAuthConfig:
    """The path rules."""

    path_rules: list[CertificateAuthPathRule] = field(default_factory=list)


class CertificateAuth(_GuardMiddleware):
    """Path-based client-certificate authentication."""

    _STAGE = 2

    _CONFIG = CertificateAuthConfig

    def __init__(self, config: CertificateAuthConfig | None = None):
        super().__init__(config)

    def _settings(self) -> dict:
        rules: dict[str, object] = {}
        for rule in self.config.path_rules:
            if rule.prefix in rules:
                continue  # tlacacoca: the first rule for a prefix wins
            if rule.allowed_fingerprints is not None:
                rules[rule.prefix] = sorted(rule.allowed_fingerprints)
            elif rule.require_cert:
                rules[rule.prefix] = "any"
            else:
                rules[rule.prefix] = "public"
        return {"cert_rules": rules} if rules else {}


__all__ = ["CertificateAuth", "CertificateAuthConfig", "CertificateAuthPathRule"]
