"""Drop-in replacements for the Python projects Tessera replaces.

Each subpackage mirrors its project's public API and module layout, so code
switches by changing its import prefix:

- ``trust_core`` -> ``tessera.compat.trust_core``
- ``tlacacoca`` -> ``tessera.compat.tlacacoca`` (middleware, certificates, logging)

Where the original accepts something unsafe, the replacement refuses it with
an exception that subclasses the original's; each module's docstring lists
the differences.
"""
