"""``tlacacoca.security.tls``: ``ssl.SSLContext`` factories, configured as
tlacacoca 0.3.0 configures them (TLS 1.2 at least; a client that leaves
certificate checks to TOFU by default; a server that may request, but not
require, client certificates).

The client default (``CERT_NONE``, no host name check) is only safe paired
with a TOFU check of the presented certificate after the handshake
(:class:`..tofu.TOFUDatabase` ``.verify``, or :mod:`tessera.tofu`), as Gemini
clients do; pass ``ssl.CERT_REQUIRED`` otherwise.
"""

from __future__ import annotations

import ssl


def create_client_context(
    verify_mode: ssl.VerifyMode = ssl.CERT_NONE,
    check_hostname: bool = False,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> ssl.SSLContext:
    """A client context; with ``certfile`` and ``keyfile``, a client certificate."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    context.verify_mode = verify_mode
    if certfile and keyfile:
        context.load_cert_chain(certfile, keyfile)
    return context


def create_server_context(
    certfile: str,
    keyfile: str,
    request_client_cert: bool = False,
    client_ca_certs: list[str] | None = None,
) -> ssl.SSLContext:
    """A server context; ``request_client_cert`` asks for (does not require)
    a client certificate, verified against ``client_ca_certs``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if request_client_cert:
        context.verify_mode = ssl.CERT_OPTIONAL
        for ca_cert in client_ca_certs or []:
            context.load_verify_locations(ca_cert)
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


__all__ = ["create_client_context", "create_server_context"]
