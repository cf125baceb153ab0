"""The Flask-Admin pages: call logs, the dashboard, and views of other components.

This component runs last. On the app's primary :class:`~flask_rpcenable.RPCEnable`
it takes the app's existing :class:`flask_admin.Admin` (the first one set up
before ``rpc.init_app``) and adds its views under the ``"RPC"`` category, or
creates one at ``RPCENABLE_ADMIN_URL`` (``/admin``) whose home page is the
dashboard. Then it calls each callable in ``state.admin_views`` with the
``Admin`` object, so the other components add their views.

The admin is never open by default. Access is decided, in order, by

1. ``RPCENABLE_ADMIN_ACCESS``: a callable (or its import path) taking no
   arguments, called for every admin request. ``True`` lets the request in;
   a response object (a redirect to the app's login page, say) is sent as is;
   anything else falls through to 2.
2. ``RPCENABLE_ADMIN_USERNAME`` and ``RPCENABLE_ADMIN_PASSWORD``: HTTP Basic
   credentials, compared in constant time. Missing or wrong ones get 401.

With neither configured every admin page answers 403 with a page saying how
to configure access.

These settings, ``RPCENABLE_ADMIN_STATS_SAMPLE`` and ``RPCENABLE_LOG_INCOMING``
are read once, at ``init_app`` (see :class:`AdminSettings`): changing
``app.config`` later changes nothing. A wrong one (an import path that does
not import, a user name without a password) raises :class:`RuntimeError` there.
"""

from __future__ import annotations

import datetime
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_admin import Admin, AdminIndexView, BaseView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import SecureForm
from flask_admin.model import typefmt
from markupsafe import Markup
from werkzeug.datastructures import CombinedMultiDict, ImmutableMultiDict, MultiDict
from werkzeug.utils import import_string
from werkzeug.wrappers import Response as BaseResponse

from .config_util import positive_int_setting
from .dbutil import as_utc

if TYPE_CHECKING:
    from .extension import RPCState

#: Settings of this component and their defaults.
DEFAULTS: dict[str, Any] = {
    "RPCENABLE_ADMIN_ENABLED": True,
    "RPCENABLE_ADMIN_URL": "/admin",
    "RPCENABLE_ADMIN_NAME": "RPC admin",
    "RPCENABLE_ADMIN_USERNAME": None,
    "RPCENABLE_ADMIN_PASSWORD": None,
    "RPCENABLE_ADMIN_ACCESS": None,
    "RPCENABLE_ADMIN_STATS_SAMPLE": 50_000,
}

#: The menu category of our views inside an app's own ``Admin``.
CATEGORY = "RPC"
_OWNED_ATTR = "_rpcenable_owned"
_DENIAL_KEY = "_rpcenable_admin_denial"
_SETTINGS_KEY = "admin_settings"
_STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
ASSETS_BLUEPRINT = "rpcenable_admin_assets"


# -- access control ----------------------------------------------------------


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
    logger = state.extra.get("calllog")
    log_incoming = (
        logger.config.log_incoming
        if logger is not None
        else bool(config.get("RPCENABLE_LOG_INCOMING", False))
    )
    return AdminSettings(
        access=_resolve_access(config["RPCENABLE_ADMIN_ACCESS"]),
        username=username,
        password=password,
        stats_sample=positive_int_setting(
            "RPCENABLE_ADMIN_STATS_SAMPLE", config["RPCENABLE_ADMIN_STATS_SAMPLE"]
        ),
        log_incoming=log_incoming,
    )


def admin_settings(app: Flask) -> AdminSettings:
    """The :class:`AdminSettings` read at ``init_app`` for ``app``'s admin."""
    from .extension import EXTENSION_KEY

    for state in app.extensions.get(EXTENSION_KEY, {}).values():
        if state.primary and _SETTINGS_KEY in state.extra:
            return state.extra[_SETTINGS_KEY]  # type: ignore[no-any-return]
    raise RuntimeError("the flask-rpcenable admin is not set up on this app")


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


# -- formatting --------------------------------------------------------------


def _format_datetime(view: Any, value: Any, *args: Any) -> str:
    value = as_utc(value)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


def _pretty_json(text: str | None) -> Markup:
    if text is None:
        return Markup("")
    try:
        pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pretty = text
    return Markup('<pre class="rpcenable-json">{}</pre>').format(pretty)


def _short(text: str | None, length: int = 80) -> str:
    if not text:
        return ""
    return text if len(text) <= length else text[: length - 1] + "\u2026"


# Column formatters, ``f(view, context, model, name)`` as Flask-Admin calls
# them; the call-log views and other components' views use them.


def short_column(length: int = 80) -> Callable[..., str]:
    """A formatter showing the column's text cut to ``length`` characters."""

    def formatter(view: Any, context: Any, model: Any, name: str) -> str:
        return _short(getattr(model, name), length)

    return formatter


def json_column(view: Any, context: Any, model: Any, name: str) -> Markup:
    """A formatter showing the column's JSON text indented, in ``<pre>``."""
    return _pretty_json(getattr(model, name))


def pre_column(view: Any, context: Any, model: Any, name: str) -> Markup:
    """A formatter showing the column's text as is, in ``<pre>``."""
    value = getattr(model, name)
    return Markup("<pre>{}</pre>").format(value) if value else Markup("")


def duration_column(view: Any, context: Any, model: Any, name: str) -> str:
    """A formatter showing ``duration_ms`` with one decimal."""
    return f"{model.duration_ms:.1f}" if model.duration_ms is not None else ""


def _request_link(view: Any, context: Any, model: Any, field: str) -> Markup:
    if not model.request_id:
        return Markup("")
    url = url_for(".index_view", search=model.request_id)
    return Markup('<a href="{}">{}</a>').format(url, model.request_id)


# -- request limits ----------------------------------------------------------

#: The highest list page number asked for in ``?page=`` that is used as is.
MAX_PAGE = 100_000
#: How much of ``?search=`` is used: characters, then words.
MAX_SEARCH_CHARS = 200
MAX_SEARCH_WORDS = 10
#: How many ``?flt...`` filters one list page applies.
MAX_FILTERS = 20
_LIST_FAILED_KEY = "_rpcenable_list_failed"
_RETURN_URL_ARG = "url"


def is_local_url(target: str) -> bool:
    """Whether ``target`` is a path on this site that is safe to redirect to.

    Only a path starting with one ``/`` is: not ``//host`` nor ``/\\host``
    (which browsers read as another host), no scheme (``http:host``,
    ``javascript:``), no backslash, blank or control character anywhere
    (browsers drop tabs and line breaks, and read ``\\`` as ``/``).
    """
    if not target.startswith("/") or target[1:2] in ("/", "\\"):
        return False
    return not any(char == "\\" or char.isspace() or not char.isprintable() for char in target)


def _drop_unsafe_return_url() -> None:
    """Remove a ``url`` argument that is not a local path from the current request.

    Flask-Admin redirects to ``request.values["url"]`` after saves, deletes and
    actions, and links to it from its forms; its own check lets
    ``http:evil.example`` through. Without the argument it uses the list page.
    """
    req = request._get_current_object()  # type: ignore[attr-defined]
    changed = False
    if any(not is_local_url(value) for value in req.args.getlist(_RETURN_URL_ARG) if value):
        req.args = ImmutableMultiDict(
            [(k, v) for k, v in req.args.items(multi=True) if k != _RETURN_URL_ARG]
        )
        changed = True
    form = req.form
    if any(not is_local_url(value) for value in form.getlist(_RETURN_URL_ARG) if value):
        req.form = ImmutableMultiDict(
            [(k, v) for k, v in form.items(multi=True) if k != _RETURN_URL_ARG]
        )
        changed = True
    if changed:
        # As Werkzeug builds ``values``: the query string, plus the form unless GET.
        sources = [req.args] if req.method == "GET" else [req.args, req.form]
        req.values = CombinedMultiDict([MultiDict(source) for source in sources])


def _clip_search(search: str) -> str:
    words = search[:MAX_SEARCH_CHARS].split()
    return " ".join(words[:MAX_SEARCH_WORDS])


# -- views -------------------------------------------------------------------


class RPCModelView(AccessMixin, ModelView):
    """Base of flask-rpcenable's admin views: access control and CSRF-protected forms.

    Subclass it for a component's own views and pass
    ``category=category_for(admin)``. Forms carry a CSRF token
    (:class:`flask_admin.form.SecureForm`); the call-log views are read-only.

    Every redirect goes to a local path only (see :func:`is_local_url`).
    List pages clamp ``?page=`` to ``MAX_PAGE``, use at most
    ``MAX_SEARCH_CHARS`` characters and ``MAX_SEARCH_WORDS`` words of
    ``?search=`` and at most ``MAX_FILTERS`` filters; a list query the
    database refuses (a number out of range, an expression too large) shows
    an empty list and a message, with status 400.
    """

    form_base_class = SecureForm
    page_size = 50
    can_set_page_size = True
    column_display_pk = False
    column_type_formatters = {
        **typefmt.BASE_FORMATTERS,
        datetime.datetime: _format_datetime,
    }
    column_type_formatters_detail = {
        **typefmt.DETAIL_FORMATTERS,
        datetime.datetime: _format_datetime,
    }

    def _run_view(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        _drop_unsafe_return_url()
        response = super()._run_view(fn, *args, **kwargs)
        if isinstance(response, BaseResponse) and 300 <= response.status_code < 400:
            location = response.headers.get("Location", "")
            if not is_local_url(location):
                # Belt and braces: whatever built it, never send the browser away.
                response = redirect(self.get_url(".index_view"))
        if g.pop(_LIST_FAILED_KEY, False):
            response = current_app.make_response(response)
            response.status_code = 400
        return response

    def _get_list_extra_args(self) -> Any:
        view_args = super()._get_list_extra_args()
        changes: dict[str, Any] = {}
        page = view_args.page or 0
        if not 0 <= page <= MAX_PAGE:
            changes["page"] = min(max(page, 0), MAX_PAGE)
        search = view_args.search
        if search and (len(search) > MAX_SEARCH_CHARS or len(search.split()) > MAX_SEARCH_WORDS):
            changes["search"] = _clip_search(search)
            flash(
                f"Only the first {MAX_SEARCH_WORDS} words (at most {MAX_SEARCH_CHARS} "
                "characters) of the search are used.",
                "warning",
            )
        if view_args.filters and len(view_args.filters) > MAX_FILTERS:
            changes["filters"] = list(view_args.filters)[:MAX_FILTERS]
            flash(f"Only the first {MAX_FILTERS} filters are used.", "warning")
        return view_args.clone(**changes) if changes else view_args

    def get_list(self, page: Any, sort_column: Any, sort_desc: Any, search: Any,
                 filters: Any, execute: bool = True, page_size: Any = None) -> Any:
        """Flask-Admin's list query; an empty list and a message if the database refuses it."""
        try:
            return super().get_list(
                page, sort_column, sort_desc, search, filters, execute=execute,
                page_size=page_size,
            )
        except (OverflowError, sa.exc.StatementError):
            self._rollback()
            current_app.logger.warning(
                "admin list %s: the database refused the query", self.endpoint, exc_info=True
            )
            flash(
                "The list could not be read with these page, filter or search values; "
                "change them and try again.",
                "error",
            )
            g.setdefault(_LIST_FAILED_KEY, True)
            return 0, []

    def _db_session(self) -> Any:
        """The SQLAlchemy session (Flask-Admin 2 is given the Flask-SQLAlchemy object)."""
        db = self.session
        return db.session if hasattr(db, "session") else db

    def _rollback(self) -> None:
        try:
            self._db_session().rollback()
        except sa.exc.SQLAlchemyError:
            current_app.logger.warning("admin: rollback failed", exc_info=True)


class ReadOnlyModelView(RPCModelView):
    """An :class:`RPCModelView` that lists and shows rows, never changes them."""

    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True


class _LogView(ReadOnlyModelView):
    """What the incoming and outgoing call logs show alike."""

    column_default_sort = [("created_at", True), ("id", True)]
    column_labels = {
        "created_at": "Time",
        "method": "Method",
        "params": "Params",
        "fault_code": "Fault code",
        "fault_string": "Fault string",
        "ok": "Success",
        "duration_ms": "Duration (ms)",
    }
    column_formatters = {
        "params": short_column(),
        "duration_ms": duration_column,
    }
    column_formatters_detail = {
        "params": json_column,
        "fault_string": pre_column,
        "duration_ms": duration_column,
    }


class IncomingCallView(_LogView):
    """Incoming calls, newest first."""

    column_list = (
        "created_at",
        "method",
        "version",
        "username",
        "ok",
        "fault_code",
        "duration_ms",
        "remote_addr",
        "params",
    )
    column_details_list = (
        "created_at",
        "method",
        "version",
        "protocol",
        "path",
        "username",
        "remote_addr",
        "ok",
        "fault_code",
        "fault_string",
        "duration_ms",
        "request_size",
        "multicall_index",
        "request_id",
        "params",
        "result",
        "traceback",
    )
    column_filters = (
        "method",
        "version",
        "username",
        "ok",
        "fault_code",
        "created_at",
        "protocol",
        "remote_addr",
        "multicall_index",
    )
    column_searchable_list = ("method", "params", "fault_string", "username", "request_id")
    column_labels = {
        **_LogView.column_labels,
        "username": "Username",
        "remote_addr": "Remote address",
        "request_size": "Request size (bytes)",
        "multicall_index": "Multicall index",
        "request_id": "Request",
    }
    column_formatters_detail = {
        **_LogView.column_formatters_detail,
        "result": json_column,
        "traceback": pre_column,
        "request_id": _request_link,
    }


class OutgoingCallView(_LogView):
    """Outgoing calls made with the logged client, newest first."""

    column_list = (
        "created_at",
        "url",
        "method",
        "ok",
        "fault_code",
        "duration_ms",
        "params",
    )
    column_details_list = (
        "created_at",
        "url",
        "method",
        "ok",
        "fault_code",
        "fault_string",
        "duration_ms",
        "params",
        "response",
        "exception",
    )
    column_filters = ("method", "url", "ok", "fault_code", "created_at")
    column_searchable_list = ("method", "url", "params", "response", "fault_string", "exception")
    column_labels = {
        **_LogView.column_labels,
        "url": "URL",
        "response": "Response",
        "exception": "Exception",
    }
    column_formatters_detail = {
        **_LogView.column_formatters_detail,
        "response": json_column,
        "exception": pre_column,
    }


class _DashboardMixin(AccessMixin):
    """The dashboard page: counts, error rates, percentiles and an hourly chart."""

    state: RPCState

    @expose("/")
    def index(self) -> Any:
        from .dashboard import build_dashboard

        settings: AdminSettings = self.state.extra[_SETTINGS_KEY]
        data = error = None
        try:
            data = build_dashboard(self.state, sample=settings.stats_sample)
        except sa.exc.SQLAlchemyError:
            current_app.logger.exception("the RPC dashboard could not read the call log")
            error = True
        return self.render(  # type: ignore[attr-defined]
            "rpcenable/admin/dashboard.html",
            data=data,
            error=error,
            incoming_endpoint=f"{self.state.extra['admin_endpoints']['incoming']}.index_view",
            log_incoming=settings.log_incoming,
        )


class DashboardIndexView(_DashboardMixin, AdminIndexView):
    """The dashboard as the home page of the admin flask-rpcenable creates."""

    def __init__(self, state: RPCState, **kwargs: Any) -> None:
        self.state = state
        super().__init__(**kwargs)


class DashboardView(_DashboardMixin, BaseView):
    """The dashboard as a page under "RPC" in the app's own admin."""

    def __init__(self, state: RPCState, **kwargs: Any) -> None:
        self.state = state
        super().__init__(**kwargs)


# -- setup -------------------------------------------------------------------


def category_for(admin: Admin) -> str | None:
    """The menu category for flask-rpcenable views in ``admin``.

    ``None`` in the admin flask-rpcenable created itself, ``"RPC"`` inside an
    app's own admin. Components pass it as ``category=`` to their views.
    """
    return None if getattr(admin, _OWNED_ATTR, False) else CATEGORY


def get_admin(app: Flask) -> Admin | None:
    """The :class:`flask_admin.Admin` that holds flask-rpcenable's views on ``app``."""
    from .extension import EXTENSION_KEY

    for state in app.extensions.get(EXTENSION_KEY, {}).values():
        if state.primary:
            return state.extra.get("admin")
    return None


def init_app(app: Flask, state: RPCState) -> None:
    """Set up the admin on the primary state; call the components' view factories."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    if not state.primary or not app.config["RPCENABLE_ADMIN_ENABLED"]:
        return
    state.extra[_SETTINGS_KEY] = read_settings(app, state)

    existing = app.extensions.get("admin") or []
    endpoints = {
        "dashboard": "rpcenable_dashboard",
        "incoming": "rpcenable_incoming",
        "outgoing": "rpcenable_outgoing",
    }
    if existing:
        admin = existing[0]
        category: str | None = CATEGORY
        admin.add_view(
            DashboardView(
                state, name="Dashboard", category=category, endpoint="rpcenable_dashboard",
                url="rpc-dashboard",
            )
        )
    else:
        url = str(app.config["RPCENABLE_ADMIN_URL"]).rstrip("/") or "/admin"
        index = DashboardIndexView(state, name="Dashboard", url=url, endpoint="admin")
        admin = Admin(app, name=str(app.config["RPCENABLE_ADMIN_NAME"]), index_view=index)
        setattr(admin, _OWNED_ATTR, True)
        category = None
        endpoints["dashboard"] = "admin"
    state.extra["admin"] = admin
    state.extra["admin_endpoints"] = endpoints

    # Flask-Admin 2 takes the Flask-SQLAlchemy object (a session is deprecated).
    session = state.db
    admin.add_view(
        IncomingCallView(
            state.models.IncomingCall, session, name="Incoming calls", category=category,
            endpoint=endpoints["incoming"], url="incoming-calls",
        )
    )
    admin.add_view(
        OutgoingCallView(
            state.models.OutgoingCall, session, name="Outgoing calls", category=category,
            endpoint=endpoints["outgoing"], url="outgoing-calls",
        )
    )
    admin_url = admin.url.rstrip("/")
    assets = Blueprint(
        ASSETS_BLUEPRINT,
        __name__,
        static_folder=_STATIC_DIR,
        static_url_path="/static",
        url_prefix=f"{admin_url}/_rpcenable",
    )
    app.register_blueprint(assets)
    for factory in state.admin_views:
        factory(admin)


def asset_url(filename: str) -> str:
    """URL of a file under ``flask_rpcenable/static/``."""
    return url_for(f"{ASSETS_BLUEPRINT}.static", filename=filename)


__all__ = [
    "CATEGORY",
    "AdminSettings",
    "DashboardIndexView",
    "DashboardView",
    "IncomingCallView",
    "OutgoingCallView",
    "RPCModelView",
    "ReadOnlyModelView",
    "access_denied",
    "admin_settings",
    "category_for",
    "duration_column",
    "get_admin",
    "init_app",
    "is_local_url",
    "json_column",
    "pre_column",
    "read_settings",
    "short_column",
]
