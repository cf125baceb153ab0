"""The settings of the authentication component, read once at ``init_app``.

Every key is documented in ``docs/auth.rst`` and ``docs/configuration.rst``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Flask

from ..settings import seconds_setting, set_defaults

__all__ = ["DEFAULTS", "SCHEMES", "AuthSettings", "parse_schemes", "parse_window"]

#: Settings of this component and their defaults.
DEFAULTS: dict[str, Any] = {
    "RPCENABLE_AUTH_WINDOW": 300,
    "RPCENABLE_AUTH_SCHEMES": ("v1", "v2"),
    "RPCENABLE_AUTH_USER_CACHE_SECONDS": 0,
    "RPCENABLE_USER_MODEL": None,
    "RPCENABLE_SECRET_KEY": None,
    "RPCENABLE_SECRET_KEY_FALLBACKS": (),
    "RPCENABLE_CACHE_TYPE": "SimpleCache",
    "RPCENABLE_CACHE_KEY_PREFIX": "rpcenable_",
    "RPCENABLE_CACHE_THRESHOLD": 100_000,
}

#: The schemes there are, in the order they are tried.
SCHEMES = ("v1", "v2")


def parse_schemes(value: Any) -> tuple[str, ...]:
    """``RPCENABLE_AUTH_SCHEMES`` (a list or a comma-separated string) as a tuple."""
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    try:
        schemes = tuple(str(v).lower() for v in value)
    except TypeError:
        schemes = ()
    if not schemes or any(s not in SCHEMES for s in schemes):
        raise RuntimeError(f"RPCENABLE_AUTH_SCHEMES must list some of {SCHEMES}, got {value!r}")
    return tuple(s for s in SCHEMES if s in schemes)


def parse_window(value: Any) -> int:
    """``RPCENABLE_AUTH_WINDOW``, a positive number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RuntimeError(f"RPCENABLE_AUTH_WINDOW must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class AuthSettings:
    """The authentication settings of one app."""

    window: int
    schemes: tuple[str, ...]
    #: Seconds a looked-up user row may be reused in this process; 0: never.
    user_cache_seconds: float

    @classmethod
    def from_app(cls, app: Flask) -> AuthSettings:
        """Set the defaults into ``app.config`` and read them.

        :raises RuntimeError: naming a setting whose value is wrong.
        """
        set_defaults(app, DEFAULTS)
        config = app.config
        return cls(
            window=parse_window(config["RPCENABLE_AUTH_WINDOW"]),
            schemes=parse_schemes(config["RPCENABLE_AUTH_SCHEMES"]),
            user_cache_seconds=seconds_setting(
                "RPCENABLE_AUTH_USER_CACHE_SECONDS", config["RPCENABLE_AUTH_USER_CACHE_SECONDS"]
            ),
        )
