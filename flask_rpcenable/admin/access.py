"""Who may use the admin: the settings that decide it, and the check run on every page.

Access is decided, in order, by

1. ``RPCENABLE_ADMIN_ACCESS``: a callable (or its import path) taking no
   arguments, called for every admin request. ``True`` lets the request in;
   a response object (a redirect to the app's login page, say) is sent as is;
   anything else falls through to 2.
2. ``RPCENABLE_ADMIN_USERNAME`` and ``RPCENABLE_ADMIN_PASSWORD``: HTTP Basic
   credentials, compared in constant time. Missing or wrong ones get 401.

With neither configured every admin page answers 403 with a page saying how
to configure access. These settings are read once, at ``init_app``
(see :class:`AdminSettings`).

Failed Basic logins are throttled per client address (``request.remote_addr``:
behind a proxy, set up :class:`werkzeug.middleware.proxy_fix.ProxyFix`): past
``RPCENABLE_ADMIN_LOGIN_RATE`` failures (default ``"10/minute"``, a
Flask-Limiter rate string; ``None`` turns it off) every admin request from
that address gets HTTP 429 with a ``Retry-After`` header until the window
has passed. The counts live in ``RPCENABLE_ADMIN_LOGIN_STORAGE`` (a
Flask-Limiter storage URI; ``"memory://"`` by default, per process).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, current_app, g, render_template, request
from limits import RateLimitItem, parse, storage, strategies
from limits.errors import ConfigurationError
from werkzeug.utils import import_string

from ..settings import bool_setting, positive_int_setting
from ..state import primary_state

if TYPE_CHECKING:
    from flask_admin import Admin

    from ..state import RPCState

_DENIAL_KEY = "_rpcenable_admin_denial"
_THROTTLED_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    "<title>429 Too many failed logins - RPC admin</title></head><body>"
    "<h1>Too many failed logins</h1><p>Too many wrong user names or passwords came from "
    "this address. Try again in {wait} seconds.</p></body></html>"
)


@dataclass(frozen=True)
class AdminSettings:
    """The admin settings of one app, read and checked once at ``init_app``."""

    #: The ``RPCENABLE_ADMIN_ACCESS`` callable (imported if given as a path).
    access: Callable[[], Any] | None
    #: ``RPCENABLE_ADMIN_USERNAME`` and ``RPCENABLE_ADMIN_PASSWORD``, or ``None``.
    username: str | None
    password: str | None
    #: ``RPCENABLE_ADMIN_STATS_SAMPLE``.
    stats_sample: int
    #: Whether incoming calls are logged (``RPCENABLE_LOG_INCOMING``).
    log_incoming: bool
    #: The throttle of failed logins, or ``None`` when it is off.
    login_throttle: LoginThrottle | None = None


class LoginThrottle:
    """Counts failed admin logins per client address (Flask-Limiter's ``limits`` engine).

    :param rate: a rate string such as ``"10/minute"``.
    :param storage_uri: where counts are kept (``"memory://"``, ``"redis://..."``).
    """

    def __init__(self, rate: str, storage_uri: str) -> None:
        self.rate: RateLimitItem = parse(rate)
        self.limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))

    def blocked(self, address: str) -> int | None:
        """Seconds to wait when ``address`` is over the rate, else ``None``."""
        if self.limiter.test(self.rate, "admin-login", address):
            return None
        reset = self.limiter.get_window_stats(self.rate, "admin-login", address).reset_time
        return max(1, int(reset - time.time()) + 1)

    def failed(self, address: str) -> None:
        """Count one failed login from ``address``."""
        self.limiter.hit(self.rate, "admin-login", address)


def _throttle(config: Any) -> LoginThrottle | None:
    rate = config["RPCENABLE_ADMIN_LOGIN_RATE"]
    if rate is None or rate == "":
        return None
    try:
        return LoginThrottle(str(rate), str(config["RPCENABLE_ADMIN_LOGIN_STORAGE"]))
    except (ValueError, TypeError, NotImplementedError, ConfigurationError) as exc:
        raise RuntimeError(
            "RPCENABLE_ADMIN_LOGIN_RATE / RPCENABLE_ADMIN_LOGIN_STORAGE: "
            f"{rate!r} is not a rate such as '10/minute', or the storage cannot be used ({exc})"
        ) from exc


def _resolve_access(value: Any) -> Callable[[], Any] | None:
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise RuntimeError(
                f"RPCENABLE_ADMIN_ACCESS: cannot import {value!r} ({exc})"
            ) from exc
    if value is not None and not callable(value):
        raise RuntimeError(
            f"RPCENABLE_ADMIN_ACCESS must be a callable or its import path, got {value!r}"
        )
    return value


def _credential(key: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RuntimeError(f"{key} must be a string, got a {type(value).__name__}")
    return value


def read_settings(app: Flask, state: RPCState) -> AdminSettings:
    """Read and check the admin settings of ``app``; :class:`RuntimeError` if one is wrong."""
    config = app.config
    username = _credential("RPCENABLE_ADMIN_USERNAME", config["RPCENABLE_ADMIN_USERNAME"])
    password = _credential("RPCENABLE_ADMIN_PASSWORD", config["RPCENABLE_ADMIN_PASSWORD"])
    if username is not None and password is None:
        raise RuntimeError(
            "RPCENABLE_ADMIN_USERNAME is set but RPCENABLE_ADMIN_PASSWORD is not: "
            "set both for HTTP Basic login to the admin"
        )
    logger = state.calllog
    log_incoming = (
        logger.config.log_incoming
        if logger is not None
        else bool_setting("RPCENABLE_LOG_INCOMING", config.get("RPCENABLE_LOG_INCOMING", False))
    )
    return AdminSettings(
        access=_resolve_access(config["RPCENABLE_ADMIN_ACCESS"]),
        username=username,
        password=password,
        stats_sample=positive_int_setting(
            "RPCENABLE_ADMIN_STATS_SAMPLE", config["RPCENABLE_ADMIN_STATS_SAMPLE"]
        ),
        log_incoming=log_incoming,
        login_throttle=_throttle(config),
    )


@dataclass
class AdminState:
    """What the admin component keeps on the app's primary state."""

    settings: AdminSettings
    #: The :class:`flask_admin.Admin` holding our views (ours or the app's).
    admin: Admin
    #: Endpoint names of the dashboard and the two call lists.
    endpoints: dict[str, str]
    #: The incoming-call list, whose filters the dashboard links to.
    incoming_view: Any = None


def admin_settings(app: Flask) -> AdminSettings:
    """The :class:`AdminSettings` read at ``init_app`` for ``app``'s admin."""
    state = primary_state(app)
    if state is None or state.admin is None:
        raise RuntimeError("the flask-rpcenable admin is not set up on this app")
    return state.admin.settings


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def access_denied() -> Response | None:
    """``None`` when the current request may use the admin, else the response to send."""
    settings = admin_settings(current_app)
    hook = settings.access
    if hook is not None:
        verdict = hook()
        if verdict is True:
            return None
        if isinstance(verdict, Response):
            return verdict
    username = settings.username
    password = settings.password
    if username and password:
        throttle = settings.login_throttle
        address = request.remote_addr or "-"
        wait = throttle.blocked(address) if throttle is not None else None
        if wait is not None:
            return Response(
                _THROTTLED_PAGE.format(wait=wait), 429, {"Retry-After": str(wait)}
            )
        try:
            auth = request.authorization
        except ValueError:  # a Basic token Werkzeug cannot decode: no credentials
            auth = None
        if auth is not None and auth.type == "basic":
            # Both compared, always: no early exit that timing could reveal.
            user_ok = _same(auth.username or "", username)
            password_ok = _same(auth.password or "", password)
            if user_ok and password_ok:
                return None
            if throttle is not None:  # a wrong guess; no credentials at all is not one
                throttle.failed(address)
        return Response(
            render_template("rpcenable/admin/denied.html", reason="login"),
            401,
            {"WWW-Authenticate": 'Basic realm="RPC admin", charset="UTF-8"'},
        )
    reason = "hook" if hook is not None else "unconfigured"
    return Response(render_template("rpcenable/admin/denied.html", reason=reason), 403)


class AccessMixin:
    """``is_accessible`` and ``inaccessible_callback`` by the rules of this module."""

    def is_accessible(self) -> bool:
        denial = access_denied()
        g.setdefault(_DENIAL_KEY, denial)
        return denial is None

    def inaccessible_callback(self, name: Any, **kwargs: Any) -> Any:
        denial = g.pop(_DENIAL_KEY, None)
        return denial if denial is not None else access_denied()



__all__ = [
    "AdminState",
    "AccessMixin",
    "LoginThrottle",
    "AdminSettings",
    "access_denied",
    "admin_settings",
    "read_settings",
]
