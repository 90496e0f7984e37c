"""``tlacacoca.security.tofu``: ``TOFUDatabase`` and ``CertificateChangedError``.

Same methods and return shapes as tlacacoca 0.3.0, on Tessera's TOFU store
(:mod:`tessera.tofu`). Differences:

- ``db_path=None`` opens the store ``tessera tofu`` and Tessera's Gemini
  client use (pins are shared with them), not ``~/.tlacacoca/tofu.db``. A
  tlacacoca database file is not read: move its pins with tlacacoca's
  ``export_toml`` and this class's ``import_toml``.
- Host names are normalised (lower case, IDNA, no trailing dot), so
  ``Example.ORG`` and ``example.org`` share one pin; an invalid host name or
  port raises ``ValueError``.
- Pins also keep the certificate's not-after date; times are UTC ISO 8601.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tessera import certs, tofu

from .certificates import _certificate

_FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{64}$")


def _iso(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).isoformat()


def _row(pin: tofu.KnownHost) -> dict[str, Any]:
    return {
        "hostname": pin.host,
        "port": pin.port,
        "fingerprint": pin.fingerprint,
        "first_seen": _iso(pin.first_seen),
        "last_seen": _iso(pin.last_seen),
    }


class CertificateChangedError(Exception):
    """A host presented another certificate than the pinned one."""

    def __init__(self, hostname: str, port: int, old_fingerprint: str, new_fingerprint: str):
        self.hostname = hostname
        self.port = port
        self.old_fingerprint = old_fingerprint
        self.new_fingerprint = new_fingerprint
        super().__init__(
            f"Certificate for {hostname}:{port} has changed!\n"
            f"Old fingerprint: {old_fingerprint}\n"
            f"New fingerprint: {new_fingerprint}\n"
            "This could indicate a man-in-the-middle attack or a legitimate "
            "certificate renewal. Verify the new certificate before continuing."
        )


class TOFUDatabase:
    """Known hosts' certificate fingerprints."""

    def __init__(self, db_path: Path | None = None):
        self.db_path = Path(db_path) if db_path is not None else Path(tofu.default_path())
        try:
            self._store = tofu.TofuStore(self.db_path)
        except tofu.TofuError as error:
            raise ValueError(str(error)) from error

    def _info(self, cert) -> certs.CertInfo:
        return certs.parse_certificate(_certificate(cert))

    def trust(self, hostname: str, port: int, cert) -> None:
        """Pins ``cert`` (a ``cryptography`` certificate, DER or PEM) for the host."""
        info = self._info(cert)
        try:
            self._store.trust(hostname, port, info.fingerprint, not_after=info.not_after)
        except tofu.TofuError as error:
            raise ValueError(str(error)) from error

    def verify(self, hostname: str, port: int, cert) -> tuple[bool, str]:
        """``(True, "first_use")`` for an unknown host (nothing is stored),
        ``(True, "")`` for a match, ``(False, "changed")`` otherwise."""
        try:
            known = self._store.check(hostname, port, _certificate(cert))
        except tofu.CertificateChanged:
            return False, "changed"
        except tofu.TofuError as error:
            raise ValueError(str(error)) from error
        return (True, "") if known else (True, "first_use")

    def revoke(self, hostname: str, port: int) -> bool:
        """Forgets the host's pin; whether there was one."""
        try:
            return self._store.revoke(hostname, port)
        except tofu.TofuError as error:
            raise ValueError(str(error)) from error

    def count_by_hostname(self, hostname: str) -> int:
        """Pins for any port of ``hostname``."""
        return sum(1 for pin in self._store.list() if pin.host == hostname.lower().rstrip("."))

    def revoke_by_hostname(self, hostname: str) -> int:
        """Forgets every port of ``hostname``; how many pins were removed."""
        try:
            return self._store.revoke_host(hostname)
        except tofu.TofuError as error:
            raise ValueError(str(error)) from error

    def list_hosts(self) -> list[dict[str, Any]]:
        """Every pin, most recently seen first."""
        pins = sorted(self._store.list(), key=lambda pin: pin.last_seen, reverse=True)
        return [_row(pin) for pin in pins]

    def clear(self) -> int:
        """Forgets every pin; how many there were."""
        removed = 0
        for pin in self._store.list():
            removed += self._store.revoke(pin.host, pin.port)
        return removed

    def get_host_info(self, hostname: str, port: int) -> dict[str, Any] | None:
        """The host's pin as a dict, or ``None``."""
        try:
            pin = self._store.lookup(hostname, port)
        except tofu.TofuError as error:
            raise ValueError(str(error)) from error
        return None if pin is None else _row(pin)

    def export_toml(self, file_path: Path) -> int:
        """Writes every pin in tlacacoca's TOML layout; how many."""
        hosts = self.list_hosts()
        lines = [
            "[_metadata]",
            f"exported_at = {json.dumps(datetime.datetime.now(datetime.timezone.utc).isoformat())}",
            'version = "1.0"',
            "",
        ]
        for host in hosts:
            key = json.dumps(f"{host['hostname']}:{host['port']}")
            lines.append(f"[hosts.{key}]")
            for field in ("hostname", "fingerprint", "first_seen", "last_seen"):
                lines.append(f"{field} = {json.dumps(host[field])}")
            lines.append(f"port = {int(host['port'])}")
            lines.append("")
        with open(file_path, "w", encoding="utf-8") as out:
            out.write("\n".join(lines))
        return len(hosts)

    def import_toml(
        self,
        file_path: Path,
        merge: bool = True,
        on_conflict: Callable[[str, int, str, str], bool] | None = None,
    ) -> tuple[int, int, int]:
        """Reads pins from tlacacoca's TOML layout: ``(added, updated, skipped)``.
        A changed fingerprint is taken only when ``on_conflict`` says so."""
        file_path = Path(file_path)
        if not file_path.exists():
            raise FileNotFoundError(f"TOML file not found: {file_path}")
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - CPython 3.10
            import tomli as tomllib
        with open(file_path, "rb") as source:
            try:
                data = tomllib.load(source)
            except tomllib.TOMLDecodeError as error:
                raise ValueError(f"Invalid TOML: {error}") from error
        hosts = data.get("hosts")
        if not isinstance(hosts, dict):
            raise ValueError("Invalid TOML: missing 'hosts' section")
        entries = []
        for key, host in hosts.items():
            for field in ("hostname", "port", "fingerprint", "first_seen", "last_seen"):
                if not isinstance(host, dict) or field not in host:
                    raise ValueError(f"Invalid TOML: host '{key}' missing required field '{field}'")
            port = host["port"]
            if not isinstance(port, int) or not 1 <= port <= 65535:
                raise ValueError(f"Invalid TOML: host '{key}' has invalid port: {port}")
            fingerprint = str(host["fingerprint"]).lower()
            if not _FINGERPRINT.match(fingerprint):
                raise ValueError(f"Invalid TOML: host '{key}' has invalid fingerprint format: {fingerprint}")
            entries.append((str(host["hostname"]), port, fingerprint))
        if not merge:
            self.clear()
        added = updated = skipped = 0
        for hostname, port, fingerprint in entries:
            existing = self.get_host_info(hostname, port)
            if existing is None:
                self._store.trust(hostname, port, fingerprint)
                added += 1
            elif existing["fingerprint"] == fingerprint:
                skipped += 1
            elif on_conflict is not None and on_conflict(hostname, port, existing["fingerprint"], fingerprint):
                self._store.trust(hostname, port, fingerprint)
                updated += 1
            else:
                skipped += 1
        return added, updated, skipped


__all__ = ["CertificateChangedError", "TOFUDatabase"]
