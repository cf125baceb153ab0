"""The call-log pages of the admin: incoming calls, outgoing calls, the dashboard.

The lists show one line per call: the time, the method and the other short
columns in full, params and results as a one-line preview of
``PREVIEW_CHARS`` characters. The detail page of a call shows every value
whole, JSON indented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app, url_for
from flask_admin import AdminIndexView, BaseView, expose
from flask_admin.contrib.sqla.filters import FilterEqual
from markupsafe import Markup

from ..db import as_utc
from .access import AccessMixin, AdminSettings
from .base import ReadOnlyModelView, duration_column, json_column, pre_column, short_column
from .dashboard import build_dashboard, format_ms

if TYPE_CHECKING:
    from ..state import RPCState

#: How many characters of params and results the lists show.
PREVIEW_CHARS = 60


def _utc_time(view: Any, context: Any, model: Any, name: str) -> str:
    """The time in UTC without the zone's name (the column's description gives it)."""
    value = as_utc(getattr(model, name))
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _request_link(view: Any, context: Any, model: Any, field: str) -> Markup:
    if not model.request_id:
        return Markup("")
    url = url_for(".index_view", search=model.request_id)
    return Markup('<a href="{}">{}</a>').format(url, model.request_id)


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
    column_descriptions = {"created_at": "In UTC."}
    column_formatters = {
        "created_at": _utc_time,
        "params": short_column(PREVIEW_CHARS),
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
        "protocol",
        "username",
        "ok",
        "fault_code",
        "duration_ms",
        "remote_addr",
        "params",
        "result",
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
        "result": "Result",
        "protocol": "Protocol",
    }
    column_formatters = {
        **_LogView.column_formatters,
        "result": short_column(PREVIEW_CHARS),
    }
    column_formatters_detail = {
        **_LogView.column_formatters_detail,
        "result": json_column,
        "traceback": pre_column,
        "request_id": _request_link,
    }

    def method_filter_url(self, method: str) -> str:
        """The URL of this list showing only the calls of ``method``.

        It uses the list's own "Method equals" filter, so the page shows
        the filter, and the user can change or remove it.
        """
        if self._method_filter_arg is None:
            self._method_filter_arg = self._find_method_filter_arg()
        return url_for(f"{self.endpoint}.index_view", **{f"flt0_{self._method_filter_arg}": method})

    _method_filter_arg: str | None = None

    def _find_method_filter_arg(self) -> str:
        for index, flt in enumerate(self.get_filters() or ()):
            column = getattr(flt, "column", None)
            if type(flt) is FilterEqual and getattr(column, "key", None) == "method":
                return self.get_filter_arg(index, flt)
        raise RuntimeError("IncomingCallView has no 'Method equals' filter")


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
        admin_state = self.state.admin
        assert admin_state is not None  # this view exists only once the admin is set up
        settings: AdminSettings = admin_state.settings
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
            incoming_endpoint=f"{admin_state.endpoints['incoming']}.index_view",
            method_url=admin_state.incoming_view.method_filter_url,
            format_ms=format_ms,
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


__all__ = [
    "PREVIEW_CHARS",
    "DashboardIndexView",
    "DashboardView",
    "IncomingCallView",
    "OutgoingCallView",
]
