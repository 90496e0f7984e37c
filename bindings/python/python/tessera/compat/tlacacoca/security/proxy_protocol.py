"""``tlacacoca.security.proxy_protocol``: PROXY protocol v1 and v2 headers
from trusted relays, parsed by the same Rust code as Tessera's servers
(``tessera.guard.parse_proxy_header``).

Differences from tlacacoca 0.3.0:

- A trusted source with host bits set (``10.0.0.1/8``) raises
  ``ValueError`` rather than being read as its network: as in the ACL, a
  typo must not widen who may claim any client address.
- ``parse_proxy_header`` refuses a v2 header as soon as its version,
  command, family or transport byte is wrong, rather than once the whole
  block has come. It never refuses later than tlacacoca, and wherever
  tlacacoca returns a header it returns the same one.
- Error messages differ; the exception is the same ``ProxyProtocolError``.

"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Literal

from tessera import guard

#: The 12-byte signature that starts every PROXY protocol v2 header.
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: The prefix that starts every PROXY protocol v1 header.
PROXY_V1_PREFIX = b"PROXY "
#: Maximum length of a v1 header line, including the trailing CRLF.
PROXY_V1_MAX_LENGTH = 107
#: Size of the fixed part of a v2 header (signature + ver/cmd + fam + len).
PROXY_V2_FIXED_HEADER_SIZE = 16
#: Default upper bound on the total v2 header size.
DEFAULT_MAX_HEADER_SIZE = 4096
#: Default number of seconds a trusted peer has to send a complete header.
DEFAULT_HEADER_TIMEOUT = 5.0

ProxyCommand = Literal["PROXY", "LOCAL"]
ProxyFamily = Literal["UNSPEC", "INET", "INET6", "UNIX"]
IPNetwork = IPv4Network | IPv6Network


class ProxyProtocolError(Exception):
    """Raised when a PROXY protocol header is malformed or unsupported."""


@dataclass(frozen=True)
class ProxyHeader:
    """A parsed PROXY header; ``length`` bytes were consumed."""

    version: int
    command: ProxyCommand
    family: ProxyFamily
    source: tuple[str, int] | None
    destination: tuple[str, int] | None
    tlvs: tuple[tuple[int, bytes], ...] = ()
    length: int = 0


@dataclass
class ProxyProtocolConfig:
    """Which relays may send PROXY headers, and how long they have to."""

    trusted_sources: list[str] = field(default_factory=list)
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE
    _networks: list[IPNetwork] = field(init=False, repr=False, compare=False, default_factory=list)

    def __post_init__(self) -> None:
        if not self.header_timeout > 0:
            raise ValueError("header_timeout must be positive")
        if self.max_header_size < PROXY_V1_MAX_LENGTH:
            raise ValueError(f"max_header_size must be at least {PROXY_V1_MAX_LENGTH}")
        self._networks = [parse_trusted_source(source) for source in self.trusted_sources]
        self._relays = guard.Chain(allow=[str(network) for network in self._networks], default="deny")

    @property
    def networks(self) -> list[IPNetwork]:
        """The trusted networks."""
        return list(self._networks)

    def is_trusted(self, ip: str) -> bool:
        """Whether the socket peer ``ip`` is a trusted relay (False for text
        that is not an address)."""
        try:
            return self._relays.check(ip).allowed
        except guard.GuardError:
            return False


def parse_trusted_source(source: str) -> IPNetwork:
    """A trusted relay entry (an address or a CIDR) as a network.

    Raises ``ValueError`` for anything else, including a CIDR with host bits set.
    """
    try:
        return ipaddress.ip_network(source.strip(), strict=True)
    except (ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"Invalid PROXY protocol trusted source: {source!r}") from error


def looks_like_proxy_header(data: bytes) -> bool:
    """Whether ``data`` (the first bytes of a connection) could start a
    PROXY header: a prefix of either signature. A TLS ClientHello never does."""
    if not data:
        return False
    return PROXY_V2_SIGNATURE.startswith(data[: len(PROXY_V2_SIGNATURE)]) or PROXY_V1_PREFIX.startswith(
        data[: len(PROXY_V1_PREFIX)]
    )


def parse_proxy_header(data: bytes, max_header_size: int = DEFAULT_MAX_HEADER_SIZE) -> ProxyHeader | None:
    """Parses the header at the start of ``data`` (everything received so
    far): ``None`` while it is incomplete, ``ProxyProtocolError`` as soon as
    the bytes cannot form a valid header."""
    try:
        header = guard.parse_proxy_header(bytes(data), max_header_size)
    except (guard.GuardError, OverflowError) as error:
        raise ProxyProtocolError(str(error)) from error
    if header is None:
        return None
    return ProxyHeader(
        version=header.version,
        command=header.command,
        family=header.family,
        source=header.source,
        destination=header.destination,
        tlvs=header.tlvs,
        length=header.length,
    )


__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_HEADER_SIZE",
    "PROXY_V1_MAX_LENGTH",
    "PROXY_V1_PREFIX",
    "PROXY_V2_FIXED_HEADER_SIZE",
    "PROXY_V2_SIGNATURE",
    "ProxyHeader",
    "ProxyProtocolConfig",
    "ProxyProtocolError",
    "looks_like_proxy_header",
    "parse_proxy_header",
    "parse_trusted_source",
]
