"""The "API users" page of the admin.

A list of the API users (username, active, last login, created) with
filters and search; creating a user generates its key; the actions
"Regenerate key", "Activate" and "Deactivate" work on the selected users.
The stored (encrypted) key is in no list, detail view, form or export.

A new key (of a created user, or from "Regenerate key") is shown once, on a
page sent as the answer to that very POST, with ``Cache-Control: no-store``.
It is never flashed: a flashed message waits in Flask's session cookie,
which is signed but not encrypted, until the next page shows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response, current_app, flash, g
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.tools import get_query_for_ids

from .base import RPCModelView, category_for

if TYPE_CHECKING:
    from flask_admin import Admin

    from ..state import RPCState

#: Columns shown, exported and detailed: never the key.
PUBLIC_COLUMNS = ("username", "active", "last_login", "created_at")
ENDPOINT = "rpcenable_api_users"
_NEW_KEY = "_rpcenable_new_api_key"
_SHOW_KEYS = "_rpcenable_show_api_keys"
KEY_TEMPLATE = "rpcenable/admin/api_keys.html"
#: Headers of the page that shows a key: no cache, no referrer keeps it.
NO_STORE = {
    "Cache-Control": "no-store, max-age=0",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
}


def make_view_class() -> type:
    """Build the view class on :class:`flask_rpcenable.admin.RPCModelView`."""

    class APIUserView(RPCModelView):
        """API users: create (key shown once), regenerate keys, (de)activate."""

        can_view_details = True
        can_export = False
        column_list = PUBLIC_COLUMNS
        column_details_list = PUBLIC_COLUMNS
        column_export_list = PUBLIC_COLUMNS
        column_filters = ("active", "last_login", "created_at", "username")
        column_searchable_list = ("username",)
        column_default_sort = "username"
        column_labels = {"last_login": "Last login", "created_at": "Created"}
        form_columns = ("username", "active")
        column_exclude_list = ("api_key_encrypted",)
        form_excluded_columns = ("api_key_encrypted", "last_login", "created_at")

        def on_model_change(self, form: Any, model: Any, is_created: bool) -> None:
            if is_created:
                setattr(g, _NEW_KEY, model.regenerate_api_key())

        def after_model_change(self, form: Any, model: Any, is_created: bool) -> None:
            # Called only once the new row is committed: only then is the key real.
            api_key = g.pop(_NEW_KEY, None)
            if is_created and api_key:
                setattr(g, _SHOW_KEYS, [(model.username, api_key)])

        @expose("/new/", methods=("GET", "POST"))
        def create_view(self) -> Any:
            """Flask-Admin's create view, answering a successful create with the key page."""
            try:
                response = super().create_view()
                keys = g.pop(_SHOW_KEYS, None)
            finally:
                g.pop(_NEW_KEY, None)
            if keys:
                return self._key_page(keys, created=True)
            return response

        def _key_page(self, keys: list[tuple[str, str]], *, created: bool) -> Response:
            html = self.render(
                KEY_TEMPLATE,
                keys=keys,
                created=created,
                list_url=self.get_url(".index_view"),
            )
            return Response(html, 200, NO_STORE)

        def _session(self) -> Any:
            # Flask-Admin 2 is given the Flask-SQLAlchemy object: its session
            # is looked up per request.
            db = self.session
            return db.session if hasattr(db, "session") else db

        def _selected(self, ids: list[str]) -> list[Any]:
            return list(get_query_for_ids(self.get_query(), self.model, tuple(ids)).all())

        @action(
            "regenerate_key",
            "Regenerate key",
            "Give the selected users new keys? Their old keys stop working at once.",
        )
        def action_regenerate_key(self, ids: list[str]) -> Response | None:
            users = self._selected(ids)
            keys = [(user.username, user.regenerate_api_key()) for user in users]
            try:
                self._session().commit()
            except sa.exc.SQLAlchemyError:
                self._session().rollback()
                current_app.logger.exception("regenerating API keys failed")
                flash("The keys could not be changed; the old keys still work.", "error")
                return None
            if not keys:
                flash("No API user selected.", "warning")
                return None
            return self._key_page(keys, created=False)

        @action("activate", "Activate")
        def action_activate(self, ids: list[str]) -> None:
            self._set_active(ids, True)

        @action("deactivate", "Deactivate", "Deactivate the selected users?")
        def action_deactivate(self, ids: list[str]) -> None:
            self._set_active(ids, False)

        def _set_active(self, ids: list[str], active: bool) -> None:
            users = self._selected(ids)
            for user in users:
                user.active = active
            self._session().commit()
            word = "activated" if active else "deactivated"
            flash(f"{len(users)} API user(s) {word}.", "success")

    return APIUserView


def add_api_user_view(admin: Admin, state: RPCState) -> None:
    """Add the "API users" view of ``state``'s user model to ``admin``."""
    view_class = make_view_class()
    admin.add_view(
        view_class(
            state.models.APIUser,
            state.db,
            name="API users",
            category=category_for(admin),
            endpoint=ENDPOINT,
            url="api-users",
        )
    )
