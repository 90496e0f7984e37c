"""``tlacacoca.logging.structured``: the structlog processor that keeps
client addresses out of logs.

Difference from tlacacoca 0.3.0: tlacacoca writes the first 12 hex digits of
an unkeyed SHA-256 of the address, which anyone can reverse by hashing the
IPv4 space. This processor writes Tessera's keyed client id (HMAC-SHA-256
under a secret key, 16 hex digits, the id Tessera's servers log), under the
same ``client_ip_hash`` field. The key is random per process unless
:func:`set_log_key` or :func:`set_log_key_file` gives a persistent one (ids
then stay stable across restarts). Text that is not an address is written
as ``"invalid"``.

:func:`configure_logging` and :func:`get_logger` set up structlog as
tlacacoca does (structlog must be installed: ``pip install structlog``), with
two differences: a log file is created ``0600`` (client ids and events are
not for every local user) and a second call closes the file the first one
opened; an unknown ``log_level`` raises :class:`ValueError` where tlacacoca
silently logs at INFO.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TextIO

from tessera import guard

_ids = guard.ClientIds()

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}

# The file the last configure_logging opened, closed by the next one.
_log_file: TextIO | None = None


def set_log_key(key: bytes, *, daily: bool = False) -> None:
    """Uses ``key`` (32 bytes) for client ids; ``daily`` rotates them every UTC day."""
    global _ids
    _ids = guard.ClientIds(key, daily=daily)


def set_log_key_file(path: str | os.PathLike[str], *, daily: bool = False) -> None:
    """Uses the key in ``path`` (created 0600 with a random key when missing)."""
    global _ids
    _ids = guard.ClientIds.from_key_file(path, daily=daily)


def hash_ip_processor(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Replaces ``client_ip`` with ``client_ip_hash``, the keyed client id."""
    if "client_ip" in event_dict:
        ip = event_dict["client_ip"]
        if ip and ip != "unknown":
            try:
                event_dict["client_ip_hash"] = _ids.id(str(ip))
            except guard.GuardError:
                event_dict["client_ip_hash"] = "invalid"
            del event_dict["client_ip"]
    return event_dict


def configure_logging(
    log_level: str = "INFO",
    log_file: Path | None = None,
    json_logs: bool = False,
    hash_ips: bool = True,
) -> None:
    """Configures structlog once at startup: events at ``log_level`` and
    above, as JSON lines (``json_logs``) or for people, to ``log_file``
    (appended to) or stdout, with client addresses replaced by keyed ids
    unless ``hash_ips`` is false.

    Raises :class:`ValueError` for an unknown level, :class:`OSError` when
    the file cannot be opened, :class:`ImportError` without structlog.
    """
    global _log_file
    structlog = _structlog()
    level = _LEVELS.get(str(log_level).upper())
    if level is None:
        known = ", ".join(name for name in _LEVELS if name != "WARN")
        raise ValueError(f"unknown log level {log_level!r}: use one of {known}")
    if log_file:
        fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        stream: TextIO = os.fdopen(fd, "a", encoding="utf-8")
    else:
        stream = sys.stdout
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso" if json_logs else "%Y-%m-%d %H:%M:%S"),
    ]
    if hash_ips:
        processors.append(hash_ip_processor)
    if json_logs:
        processors.append(structlog.processors.JSONRenderer())
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        context_class=dict,
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
    previous, _log_file = _log_file, (stream if log_file else None)
    if previous is not None:
        previous.close()


def get_logger(name: str) -> Any:
    """The structlog logger for ``name`` (typically ``__name__``)."""
    return _structlog().get_logger(name)


def _structlog() -> Any:
    try:
        import structlog
    except ImportError as error:
        raise ImportError(
            "tessera.compat.tlacacoca.logging needs structlog for configure_logging "
            "and get_logger: pip install structlog"
        ) from error
    return structlog


__all__ = ["configure_logging", "get_logger", "hash_ip_processor", "set_log_key", "set_log_key_file"]
