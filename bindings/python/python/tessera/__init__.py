"""Tessera: fast, safe building blocks for non-HTTP network services.

The work is done by the Tessera Rust crates; this package exposes them:

- :mod:`tessera.pow` -- tlslp WORK puzzles, Hashcash stamps, SHA-256 challenges
- :mod:`tessera.guard` -- the admission chain (ACL, rate limits, certificate rules)
- :mod:`tessera.certs` -- self-signed certificates, a dev PKI, fingerprints, PEM
- :mod:`tessera.tofu` -- the trust-on-first-use store the CLI uses
- :mod:`tessera.trust` -- capability tokens, proofs of possession, signed jobs

Every error Tessera raises is a :class:`TesseraError`.
"""

from tessera._tessera import TesseraError, __version__

__all__ = ["TesseraError", "__version__"]
