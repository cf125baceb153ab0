"""Checks shared by the components that read ``RPCENABLE_*`` settings.

Each raises :class:`RuntimeError` naming the setting and the value it got,
so a wrong setting stops ``init_app`` with a clear message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "DEFAULT_REDACT_KEYS",
    "int_setting",
    "norm_key",
    "positive_int_setting",
    "redact_keys",
    "retention_days",
    "seconds_setting",
]

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


def int_setting(key: str, value: Any, minimum: int) -> int:
    """``value`` of setting ``key``, which must be an integer of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RuntimeError(f"{key} must be an integer of at least {minimum}, got {value!r}")
    return value


def positive_int_setting(key: str, value: Any) -> int:
    """``value`` of setting ``key``, which must be an integer of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RuntimeError(f"{key} must be a positive integer, got {value!r}")
    return value


def seconds_setting(key: str, value: Any) -> float:
    """``value`` of setting ``key``, which must be a number of seconds (0 or more)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise RuntimeError(f"{key} must be a number of seconds (0 or more), got {value!r}")
    return float(value)


def retention_days(key: str, value: Any) -> float | None:
    """``value`` of setting ``key``: a positive number of days, or ``None`` (keep forever)."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
    ):
        raise RuntimeError(f"{key} must be a positive number of days or None, got {value!r}")
    return value


def norm_key(key: Any) -> str:
    """``key`` lowercased with everything but letters and digits left out."""
    return "".join(ch for ch in str(key).lower() if ch.isalnum())


def redact_keys(value: str | Iterable[Any]) -> tuple[str, ...]:
    """The redact-keys setting (one key or several) as normalized, non-empty keys."""
    keys = [value] if isinstance(value, str) else value
    return tuple(norm_key(k) for k in keys if norm_key(k))
