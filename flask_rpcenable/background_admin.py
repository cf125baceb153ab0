"""The read-only Flask-Admin view of background job records."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

if TYPE_CHECKING:
    from .extension import RPCState

ENDPOINT = "rpcenable_background_jobs"


def _short(length: int) -> Callable[..., str]:
    def formatter(view: Any, context: Any, model: Any, name: str) -> str:
        value = getattr(model, name)
        if not value:
            return ""
        return value if len(value) <= length else value[: length - 1] + "\u2026"

    return formatter


def _pre(view: Any, context: Any, model: Any, name: str) -> Markup:
    value = getattr(model, name)
    return Markup("<pre>{}</pre>").format(value) if value else Markup("")


def _duration(view: Any, context: Any, model: Any, name: str) -> str:
    return f"{model.duration_ms:.1f}" if model.duration_ms is not None else ""


def admin_view_factory(state: RPCState, model: Any) -> Callable[[Any], None]:
    """A callable adding the "Background jobs" view to a Flask-Admin ``Admin``."""

    def add_view(admin: Any) -> None:
        from .admin import RPCModelView, category_for

        class BackgroundJobView(RPCModelView):
            """Background jobs, newest first; read-only."""

            can_create = False
            can_edit = False
            can_delete = False
            can_view_details = True
            column_default_sort = [("queued_at", True), ("id", True)]
            column_list = (
                "queued_at",
                "name",
                "state",
                "attempts",
                "duration_ms",
                "host",
                "error",
                "arguments",
            )
            column_details_list = (
                "job_id",
                "name",
                "state",
                "backend",
                "arguments",
                "attempts",
                "queued_at",
                "started_at",
                "finished_at",
                "duration_ms",
                "host",
                "error",
                "traceback",
            )
            column_filters = ("state", "name", "backend", "queued_at", "host")
            column_searchable_list = ("name", "job_id", "arguments", "error")
            column_labels = {
                "queued_at": "Queued",
                "started_at": "Started",
                "finished_at": "Finished",
                "duration_ms": "Duration (ms)",
                "job_id": "Job id",
            }
            column_formatters = {
                "arguments": _short(80),
                "error": _short(80),
                "duration_ms": _duration,
            }
            column_formatters_detail = {
                "traceback": _pre,
                "error": _pre,
                "arguments": _pre,
                "duration_ms": _duration,
            }

        # Flask-Admin 2 takes the Flask-SQLAlchemy object itself.
        admin.add_view(
            BackgroundJobView(
                model,
                state.db,
                name="Background jobs",
                category=category_for(admin),
                endpoint=ENDPOINT,
                url="background-jobs",
            )
        )

    return add_view
