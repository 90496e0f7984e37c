"""``tlacacoca.logging``: structlog set up as tlacacoca does, with the keyed
IP-hashing processor."""

from .structured import configure_logging, get_logger, hash_ip_processor, set_log_key, set_log_key_file

__all__ = ["configure_logging", "get_logger", "hash_ip_processor", "set_log_key", "set_log_key_file"]
