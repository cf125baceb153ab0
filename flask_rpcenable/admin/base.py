"""The base of flask-rpcenable's admin views, and the column formatters they share.

:class:`RPCModelView` adds to Flask-Admin's ``ModelView``: access control
(:mod:`flask_rpcenable.admin.access`), CSRF-protected forms, local-only
redirects, limits on hostile list queries, and list and detail templates
that load this package's style sheet.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import current_app, flash, g, redirect, request
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import SecureForm
from flask_admin.model import typefmt
from markupsafe import Markup
from werkzeug.datastructures import CombinedMultiDict, ImmutableMultiDict, MultiDict
from werkzeug.wrappers import Response as BaseResponse

from ..db import as_utc
from .access import AccessMixin
from .dashboard import format_ms

#: The menu category of our views inside an app's own ``Admin``.
CATEGORY = "RPC"
#: Marks the :class:`flask_admin.Admin` that flask-rpcenable created itself.
OWNED_ATTR = "_rpcenable_owned"

#: The page shown instead of a form page when the app has no ``SECRET_KEY``.
NO_SECRET_TEMPLATE = "rpcenable/admin/no_secret_key.html"  # noqa: S105  (a file name)


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


def short_text(text: str | None, length: int = 80) -> str:
    """``text`` on one line (runs of blanks and line breaks made one space), cut to
    ``length`` characters with an ellipsis."""
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "\u2026"


# Column formatters, ``f(view, context, model, name)`` as Flask-Admin calls
# them; the call-log views and other components' views use them.


def short_column(length: int = 80) -> Callable[..., str]:
    """A formatter showing the column's text on one line, cut to ``length`` characters."""

    def formatter(view: Any, context: Any, model: Any, name: str) -> str:
        return short_text(getattr(model, name), length)

    return formatter


def json_column(view: Any, context: Any, model: Any, name: str) -> Markup:
    """A formatter showing the column's JSON text indented, in ``<pre>``."""
    return _pretty_json(getattr(model, name))


def pre_column(view: Any, context: Any, model: Any, name: str) -> Markup:
    """A formatter showing the column's text as is, in ``<pre>``."""
    value = getattr(model, name)
    return Markup("<pre>{}</pre>").format(value) if value else Markup("")


def duration_column(view: Any, context: Any, model: Any, name: str) -> str:
    """A formatter showing a duration in milliseconds (see :func:`format_ms`)."""
    value = getattr(model, name)
    return format_ms(value) if value is not None else ""


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
    #: Flask-Admin's list and detail pages plus this package's style sheet:
    #: one-line cells, no fixed-width column (see ``static/rpcenable/admin.css``).
    list_template = "rpcenable/admin/model_list.html"
    details_template = "rpcenable/admin/model_details.html"
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

    def needs_session(self) -> bool:
        """Whether this view's pages hold a form, whose CSRF token lives in the session."""
        actions, _ = self.get_actions_list()
        return bool(self.can_create or self.can_edit or self.can_delete or actions)

    def _run_view(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not current_app.secret_key and self.needs_session():
            # Without a secret key Flask has no session, and the forms' CSRF
            # tokens no place: say what to set instead of failing with a 500.
            return self.render(NO_SECRET_TEMPLATE), 503
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


__all__ = [
    "CATEGORY",
    "OWNED_ATTR",
    "category_for",
    "MAX_FILTERS",
    "MAX_PAGE",
    "MAX_SEARCH_CHARS",
    "MAX_SEARCH_WORDS",
    "RPCModelView",
    "ReadOnlyModelView",
    "duration_column",
    "is_local_url",
    "json_column",
    "pre_column",
    "short_column",
    "short_text",
]

def category_for(admin: Any) -> str | None:
    """The menu category for flask-rpcenable views in ``admin``.

    ``None`` in the admin flask-rpcenable created itself, ``"RPC"`` inside an
    app's own admin. Components pass it as ``category=`` to their views.
    """
    return None if getattr(admin, OWNED_ATTR, False) else CATEGORY
