"""Trust on first use: pin a server's certificate the first time, refuse a
changed one after. The store is the SQLite file ``tessera tofu`` and the
Gemini client use (``default_path()``), so pins are shared with the CLI.

>>> from tessera import tofu
>>> store = tofu.TofuStore("/tmp/tessera-doctest-tofu.sqlite3")  # doctest: +SKIP
>>> store.verify_or_trust("example.org", 1965, der).kind          # doctest: +SKIP
'first_use'

A changed certificate raises :class:`CertificateChanged`, whose ``host``,
``port``, ``stored``, ``presented`` and ``first_seen`` say what differs.
"""

from tessera._tessera import (
    CertificateChanged,
    KnownHost,
    TofuError,
    TofuStore,
    TofuVerdict,
    default_path,
)

# The native exception carries (message, host, port, stored, presented,
# first_seen) as its args; these name them.
CertificateChanged.host = property(lambda self: self.args[1])
CertificateChanged.port = property(lambda self: self.args[2])
CertificateChanged.stored = property(lambda self: self.args[3])
CertificateChanged.presented = property(lambda self: self.args[4])
CertificateChanged.first_seen = property(lambda self: self.args[5])
CertificateChanged.__str__ = lambda self: self.args[0]

__all__ = [
    "CertificateChanged",
    "KnownHost",
    "TofuError",
    "TofuStore",
    "TofuVerdict",
    "default_path",
]
