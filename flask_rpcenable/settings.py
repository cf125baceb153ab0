"""The ``RPCENABLE_*`` settings of the core, with their defaults.

Each component (logging, auth, background jobs, client) sets its own keys'
defaults in its ``init_app``; this module holds the ones the endpoint needs.
Every key is documented in ``docs/configuration.rst``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask

from .config_util import bool_setting, set_defaults

#: Core settings and their defaults.
DEFAULTS: dict[str, Any] = {
    "RPCENABLE_URL_PREFIX": "/rpc",
    "RPCENABLE_MAX_REQUEST_SIZE": 10 * 1024 * 1024,
    "RPCENABLE_MAX_DEPTH": 32,
    "RPCENABLE_MAX_MULTICALL": 1000,
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
        for key in ("RPCENABLE_MAX_REQUEST_SIZE", "RPCENABLE_MAX_DEPTH", "RPCENABLE_MAX_MULTICALL"):
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
        )
