"""The Flask-Admin pages: call logs, the dashboard, and views of other components.

This component runs last. On the app's primary :class:`~flask_rpcenable.RPCEnable`
it takes the app's existing :class:`flask_admin.Admin` (the first one set up
before ``rpc.init_app``) and adds its views under the ``"RPC"`` category, or
creates one at ``RPCENABLE_ADMIN_URL`` (``/admin``) whose home page is the
dashboard. Then it calls each callable in ``state.admin_views`` with the
``Admin`` object, so the other components add their views.

The admin is never open by default: see :mod:`flask_rpcenable.admin_access`
for ``RPCENABLE_ADMIN_ACCESS``, ``RPCENABLE_ADMIN_USERNAME`` and
``RPCENABLE_ADMIN_PASSWORD``. With none of them configured every admin page
answers 403 with a page saying how to configure access.

These settings, ``RPCENABLE_ADMIN_STATS_SAMPLE`` and ``RPCENABLE_LOG_INCOMING``
are read once, at ``init_app`` (see :class:`AdminSettings`): changing
``app.config`` later changes nothing. A wrong one (an import path that does
not import, a user name without a password) raises :class:`RuntimeError` there.

The pieces live in :mod:`~flask_rpcenable.admin_access` (who may enter),
:mod:`~flask_rpcenable.admin_base` (the base view and column formatters) and
:mod:`~flask_rpcenable.admin_calls` (call logs and the dashboard); their
public names are importable from here too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, url_for
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from .admin_access import (
    SETTINGS_KEY,
    AccessMixin,
    AdminSettings,
    access_denied,
    admin_settings,
    read_settings,
)
from .admin_base import (
    MAX_FILTERS,
    MAX_PAGE,
    MAX_SEARCH_CHARS,
    MAX_SEARCH_WORDS,
    ReadOnlyModelView,
    RPCModelView,
    duration_column,
    is_local_url,
    json_column,
    pre_column,
    short_column,
    short_text,
)
from .admin_calls import (
    INCOMING_VIEW_KEY,
    PREVIEW_CHARS,
    DashboardIndexView,
    DashboardView,
    IncomingCallView,
    OutgoingCallView,
)
from .config_util import bool_setting, set_defaults

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
_STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
ASSETS_BLUEPRINT = "rpcenable_admin_assets"


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
    set_defaults(app, DEFAULTS)
    enabled = bool_setting("RPCENABLE_ADMIN_ENABLED", app.config["RPCENABLE_ADMIN_ENABLED"])
    if not state.primary or not enabled:
        return
    state.extra[SETTINGS_KEY] = read_settings(app, state)

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
        setattr(admin, _OWNED_ATTR, True)
        category = None
        endpoints["dashboard"] = "admin"
    state.extra["admin"] = admin
    state.extra["admin_endpoints"] = endpoints

    # Flask-Admin 2 takes the Flask-SQLAlchemy object (a session is deprecated).
    session = state.db
    incoming = IncomingCallView(
        state.models.IncomingCall, session, name="Incoming calls", category=category,
        endpoint=endpoints["incoming"], url="incoming-calls",
    )
    state.extra[INCOMING_VIEW_KEY] = incoming
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
    for factory in state.admin_views:
        factory(admin)


def asset_url(filename: str) -> str:
    """URL of a file under ``flask_rpcenable/static/``."""
    return url_for(f"{ASSETS_BLUEPRINT}.static", filename=filename)


__all__ = [
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
    "asset_url",
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
