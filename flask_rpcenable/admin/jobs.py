"""The read-only Flask-Admin view of background job records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import ReadOnlyModelView, category_for, duration_column, pre_column, short_column

if TYPE_CHECKING:
    from ..state import RPCState

__all__ = ["BackgroundJobView", "add_job_view"]

ENDPOINT = "rpcenable_background_jobs"


class BackgroundJobView(ReadOnlyModelView):
    """Background jobs, newest first; read-only."""

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
        "arguments": short_column(80),
        "error": short_column(80),
        "duration_ms": duration_column,
    }
    column_formatters_detail = {
        "traceback": pre_column,
        "error": pre_column,
        "arguments": pre_column,
        "duration_ms": duration_column,
    }


def add_job_view(admin: Any, state: RPCState) -> None:
    """Add the "Background jobs" view of ``state``'s job records to ``admin``."""
    # Flask-Admin 2 takes the Flask-SQLAlchemy object itself.
    admin.add_view(
        BackgroundJobView(
            state.models.BackgroundJob,
            state.db,
            name="Background jobs",
            category=category_for(admin),
            endpoint=ENDPOINT,
            url="background-jobs",
        )
    )
