"""Redaction and truncation: what of a call's data may be stored or shown.

Logs, job records, job mail and client error messages keep struct values
whose key names a secret out (``***``), and cut long texts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["DEFAULT_REDACT_KEYS", "REDACTED", "norm_key", "redact_keys"]

#: What a redacted value is replaced with.
REDACTED = "***"

#: Struct keys (and parts of keys) whose values the logs and job records redact.
DEFAULT_REDACT_KEYS = (
    "password",
    "passwd",
    "secret",
    "token",
    "signature",
    "apikey",
    "authorization",
    "privatekey",
    "credential",
)

def norm_key(key: Any) -> str:
    """``key`` lowercased with everything but letters and digits left out."""
    return "".join(ch for ch in str(key).lower() if ch.isalnum())


def redact_keys(value: str | Iterable[Any]) -> tuple[str, ...]:
    """The redact-keys setting (one key or several) as normalized, non-empty keys."""
    keys = [value] if isinstance(value, str) else value
    return tuple(norm_key(k) for k in keys if norm_key(k))
