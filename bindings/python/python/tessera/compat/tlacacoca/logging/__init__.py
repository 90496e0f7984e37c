"""``tlacacoca.logging``: the keyed IP-hashing processor."""

from .structured import hash_ip_processor, set_log_key, set_log_key_file

__all__ = ["hash_ip_processor", "set_log_key", "set_log_key_file"]
