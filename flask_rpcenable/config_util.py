"""Checks shared by the components that read ``RPCENABLE_*`` settings.

Each raises :class:`RuntimeError` naming the setting and the value it got,
so a wrong setting stops ``init_app`` with a clear message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask

__all__ = [
    "DEFAULT_REDACT_KEYS",
    "bool_setting",
    "set_defaults",
    "warn_unknown_settings",
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


#: Every ``RPCENABLE_*`` key a component has given a default with :func:`set_defaults`.
KNOWN_KEYS: set[str] = set()
#: Keys of ours that have no default (read with ``config.get``) or that pass
#: through to another library (``RPCENABLE_CACHE_X`` is Flask-Caching's ``CACHE_X``).
_EXTRA_KEYS = frozenset({"RPCENABLE_SECRET_KEY_FALLBACKS"})
_PASS_THROUGH_PREFIXES = ("RPCENABLE_CACHE_",)

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def set_defaults(app: Flask, defaults: Mapping[str, Any]) -> None:
    """Put each setting's default into ``app.config`` unless the app set it."""
    KNOWN_KEYS.update(defaults)
    for key, value in defaults.items():
        app.config.setdefault(key, value)


def bool_setting(key: str, value: Any) -> bool:
    """``value`` of setting ``key`` as a bool.

    Takes a bool, the integers 0 and 1, or one of ``true/false/1/0/yes/no/on/off``
    in any case (what ``app.config.from_prefixed_env()`` leaves as a string,
    e.g. ``FLASK_RPCENABLE_ALLOW_NONE=False``). Anything else is an error: a
    value such as ``"false"`` must never count as true.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise RuntimeError(
        f"{key} must be true or false (a bool, or one of true/false/1/0/yes/no/on/off), "
        f"got {value!r}"
    )


def warn_unknown_settings(app: Flask) -> None:
    """Log one warning for each ``RPCENABLE_*`` key in the config that is no setting of ours.

    A mistyped key (``RPCENABLE_LOG_INCOMMING``) would otherwise be ignored in
    silence; the warning names the nearest real setting.
    """
    known = KNOWN_KEYS | _EXTRA_KEYS
    for key in sorted(k for k in app.config if isinstance(k, str)):
        if not key.startswith("RPCENABLE_") or key in known:
            continue
        if key.startswith(_PASS_THROUGH_PREFIXES):
            continue
        nearest = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {nearest[0]}?" if nearest else ""
        app.logger.warning(
            "flask-rpcenable: %s is not a setting of flask-rpcenable and is ignored%s",
            key,
            hint,
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
