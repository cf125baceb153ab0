"""The Flask-Admin pages: call logs, the dashboard, and views of other components.

This component runs last. On the app's primary :class:`~flask_rpcenable.RPCEnable`
it takes the app's existing :class:`flask_admin.Admin` (the first one set up
before ``rpc.init_app``) and adds its views under the ``"RPC"`` category, or
creates one at ``RPCENABLE_ADMIN_URL`` (``/admin``) whose home page is the
dashboard. Then it adds a view for each component's models: API users and
background jobs. The components know nothing of the admin.

The admin is never open by default: see ``flask_rpcenable.admin.access``
for ``RPCENABLE_ADMIN_ACCESS``, ``RPCENABLE_ADMIN_USERNAME`` and
``RPCENABLE_ADMIN_PASSWORD``. With none of them configured every admin page
answers 403 with a page saying how to configure access.

These settings, ``RPCENABLE_ADMIN_STATS_SAMPLE`` and ``RPCENABLE_LOG_INCOMING``
are read once, at ``init_app`` (see ``AdminSettings``): changing
``app.config`` later changes nothing. A wrong one (an import path that does
not import, a user name without a password) raises :class:`RuntimeError` there.

The pieces live in ``flask_rpcenable.admin.access`` (who may enter),
``flask_rpcenable.admin.base`` (the base view and column formatters) and
``flask_rpcenable.admin.calls`` (call logs and the dashboard); their
public names are importable from here too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from ..settings import bool_setting, set_defaults
from ..state import primary_state
from .access import (
    AccessMixin,
    AdminSettings,
    AdminState,
    access_denied,
    admin_settings,
    read_settings,
)
from .base import (
    CATEGORY,
    MAX_FILTERS,
    MAX_PAGE,
    MAX_SEARCH_CHARS,
    MAX_SEARCH_WORDS,
    OWNED_ATTR,
    ReadOnlyModelView,
    RPCModelView,
    category_for,
    duration_column,
    is_local_url,
    json_column,
    pre_column,
    short_column,
    short_text,
)
from .calls import (
    PREVIEW_CHARS,
    DashboardIndexView,
    DashboardView,
    IncomingCallView,
    OutgoingCallView,
)
from .headers import FRAME_ANCESTORS, SECURITY_HEADERS, AdminHeaders
from .jobs import add_job_view
from .users import add_api_user_view

if TYPE_CHECKING:
    from ..state import RPCState

#: Settings of this component and their defaults.
DEFAULTS: dict[str, Any] = {
    "RPCENABLE_ADMIN_ENABLED": True,
    "RPCENABLE_ADMIN_URL": "/admin",
    "RPCENABLE_ADMIN_NAME": "RPC admin",
    "RPCENABLE_ADMIN_USERNAME": None,
    "RPCENABLE_ADMIN_PASSWORD": None,
    "RPCENABLE_ADMIN_ACCESS": None,
    "RPCENABLE_ADMIN_STATS_SAMPLE": 50_000,
    "RPCENABLE_ADMIN_LOGIN_RATE": "10/minute",
    "RPCENABLE_ADMIN_LOGIN_STORAGE": "memory://",
}


_STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")
ASSETS_BLUEPRINT = "rpcenable_admin_assets"


# -- setup -------------------------------------------------------------------


def get_admin(app: Flask) -> Admin | None:
    """The :class:`flask_admin.Admin` that holds flask-rpcenable's views on ``app``."""
    state = primary_state(app)
    return state.admin.admin if state is not None and state.admin is not None else None


def init_app(app: Flask, state: RPCState) -> None:
    """Set up the admin on the primary state, with a view for each component's models."""
    set_defaults(app, DEFAULTS)
    enabled = bool_setting("RPCENABLE_ADMIN_ENABLED", app.config["RPCENABLE_ADMIN_ENABLED"])
    if not state.primary or not enabled:
        return
    settings = read_settings(app, state)

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
        # Fluid: the pages use the window's width, not Bootstrap's fixed-width column.
        admin = Admin(
            app,
            name=str(app.config["RPCENABLE_ADMIN_NAME"]),
            index_view=index,
            theme=Bootstrap4Theme(fluid=True),
        )
        setattr(admin, OWNED_ATTR, True)
        category = None
        endpoints["dashboard"] = "admin"
    state.admin = AdminState(settings=settings, admin=admin, endpoints=endpoints)

    # Flask-Admin 2 takes the Flask-SQLAlchemy object (a session is deprecated).
    session = state.db
    incoming = IncomingCallView(
        state.models.IncomingCall, session, name="Incoming calls", category=category,
        endpoint=endpoints["incoming"], url="incoming-calls",
    )
    state.admin.incoming_view = incoming
    admin.add_view(incoming)
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
    add_security_headers(app, admin_url)
    if state.models.APIUser is not None:
        add_api_user_view(admin, state)
    if state.models.BackgroundJob is not None:
        add_job_view(admin, state)


def add_security_headers(app: Flask, admin_url: str) -> None:
    """Set :data:`SECURITY_HEADERS` and CSP ``frame-ancestors`` on every response under
    ``admin_url`` (what the app set itself is kept; a CSP of its own gets the directive
    appended), by wrapping ``app.wsgi_app`` (see :mod:`flask_rpcenable.admin.headers`)."""
    app.wsgi_app = AdminHeaders(app.wsgi_app, admin_url)  # type: ignore[method-assign]


__all__ = [
    "FRAME_ANCESTORS",
    "SECURITY_HEADERS",
    "add_security_headers",
    "CATEGORY",
    "MAX_FILTERS",
    "MAX_PAGE",
    "MAX_SEARCH_CHARS",
    "MAX_SEARCH_WORDS",
    "PREVIEW_CHARS",
    "AccessMixin",
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
    "short_text",
]
