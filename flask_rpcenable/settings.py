"""Every ``RPCENABLE_*`` setting is read here, one way.

Each component declares its keys and defaults in a ``DEFAULTS`` dict, puts
them into ``app.config`` with :func:`set_defaults` and reads its values once
at ``init_app`` with the checks below; each check raises :class:`RuntimeError`
naming the setting and the value it got. :class:`Settings` holds the core's
own settings. Every key is documented in ``docs/configuration.rst``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask

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

#: Core settings and their defaults.
DEFAULTS: dict[str, Any] = {
    "RPCENABLE_URL_PREFIX": "/rpc",
    "RPCENABLE_MAX_REQUEST_SIZE": 10 * 1024 * 1024,
    "RPCENABLE_MAX_DEPTH": 32,
    "RPCENABLE_MAX_MULTICALL": 1000,
    "RPCENABLE_MAX_ELEMENTS": 1_000_000,
    "RPCENABLE_ALLOW_NONE": True,
    "RPCENABLE_ENCODING": None,
    "RPCENABLE_I8": "auto",
    "RPCENABLE_BROWSABLE": True,
    "RPCENABLE_DATABASE_URI": "sqlite:///rpcenable.sqlite",
}

I8_MODES = ("auto", "always", "never")


@dataclass(frozen=True)
class Settings:
    """Core settings of one app, read once at ``init_app``."""

    url_prefix: str
    max_request_size: int
    max_depth: int
    max_multicall: int
    allow_none: bool
    encoding: str
    i8: str
    browsable: bool
    #: The most XML elements one XML-RPC request may hold.
    max_elements: int = 1_000_000

    @classmethod
    def from_app(cls, app: Flask, **overrides: Any) -> Settings:
        """Set the defaults into ``app.config`` and read them.

        :param overrides: values given to :class:`RPCEnable` itself, which win
            over the config (``url_prefix``, for two APIs on one app).
        :raises RuntimeError: on a value of the wrong type or range.
        """
        set_defaults(app, DEFAULTS)
        config = {key: app.config[key] for key in DEFAULTS}
        for name, value in overrides.items():
            if value is not None:
                config[f"RPCENABLE_{name.upper()}"] = value
        prefix = str(config["RPCENABLE_URL_PREFIX"]).rstrip("/")
        if prefix and not prefix.startswith("/"):
            raise RuntimeError(f"RPCENABLE_URL_PREFIX must start with '/', got {prefix!r}")
        for key in (
            "RPCENABLE_MAX_REQUEST_SIZE",
            "RPCENABLE_MAX_DEPTH",
            "RPCENABLE_MAX_MULTICALL",
            "RPCENABLE_MAX_ELEMENTS",
        ):
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RuntimeError(f"{key} must be a positive integer, got {value!r}")
        i8 = str(config["RPCENABLE_I8"]).lower()
        if i8 not in I8_MODES:
            raise RuntimeError(f"RPCENABLE_I8 must be one of {I8_MODES}, got {i8!r}")
        encoding = config["RPCENABLE_ENCODING"] or "utf-8"
        try:
            "".encode(encoding)
        except LookupError:
            raise RuntimeError(f"RPCENABLE_ENCODING: unknown encoding {encoding!r}") from None
        return cls(
            url_prefix=prefix,
            max_request_size=config["RPCENABLE_MAX_REQUEST_SIZE"],
            max_depth=config["RPCENABLE_MAX_DEPTH"],
            max_multicall=config["RPCENABLE_MAX_MULTICALL"],
            allow_none=bool_setting("RPCENABLE_ALLOW_NONE", config["RPCENABLE_ALLOW_NONE"]),
            encoding=encoding,
            i8=i8,
            browsable=bool_setting("RPCENABLE_BROWSABLE", config["RPCENABLE_BROWSABLE"]),
            max_elements=config["RPCENABLE_MAX_ELEMENTS"],
        )
