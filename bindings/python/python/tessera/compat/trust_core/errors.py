"""``trust_core.errors``: the one exception family.

:class:`TrustError` is :class:`tessera.trust.TrustError`: every refusal raises a
subclass of it that names the failed check (``tessera.trust.Stale``,
``tessera.trust.Replayed``, ...), so ``except TrustError`` keeps working and
code that wants the reason can catch the subclass.
"""

from tessera.trust import TrustError

__all__ = ["TrustError"]
