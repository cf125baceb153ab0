"""The ``BackgroundJob`` model and the writer of job records.

One row per postponed call: queued when it is scheduled, then running,
succeeded or failed. Rows are written in a session of their own, never in
``db.session``, so they neither commit nor roll back the job's own work; and
a failed write is logged, never raised into a worker.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..db import (
    AtMostEvery,
    bookkeeping_engine,
    id_column,
    once_per_db,
    report_write_failure,
    utcnow,
)
from ..redact import cut_text

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

log = logging.getLogger("flask_rpcenable.background")

TABLE = "rpcenable_background_job"

#: The states a job record goes through.
QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED)

#: Longest texts kept in a record.
NAME_LENGTH = 255
ERROR_LENGTH = 1000
TRACEBACK_LENGTH = 20_000
#: How often (seconds) queueing a job may also delete records past the retention.
PRUNE_INTERVAL = 3600.0


@once_per_db
def define_background_job_model(db: SQLAlchemy) -> Any:
    """Define (once per ``db``) the ``BackgroundJob`` model.

    :param db: the Flask-SQLAlchemy object whose metadata holds the table.
    :returns: the model class; the same one on every call for ``db``.
    """

    class BackgroundJob(db.Model):  # type: ignore[name-defined,misc]
        """One postponed call: what ran, where, when, and how it ended."""

        __tablename__ = TABLE
        __table_args__ = (
            sa.Index("ix_rpcenable_background_job_state_queued", "state", "queued_at"),
        )

        id = id_column()
        #: The job handle's id (the RQ job id with the RQ backend).
        job_id = sa.Column(sa.String(64), nullable=False, unique=True)
        #: ``module.function`` of the postponed function.
        name = sa.Column(sa.String(NAME_LENGTH), nullable=False, index=True)
        #: The arguments, redacted and cut.
        arguments = sa.Column(sa.Text, nullable=True)
        state = sa.Column(sa.String(16), nullable=False, default=QUEUED)
        backend = sa.Column(sa.String(16), nullable=False, default="thread")
        attempts = sa.Column(sa.Integer, nullable=False, default=0)
        queued_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
        started_at = sa.Column(sa.DateTime(timezone=True), nullable=True)
        finished_at = sa.Column(sa.DateTime(timezone=True), nullable=True)
        duration_ms = sa.Column(sa.Float, nullable=True)
        #: Host and process id that ran (or last tried) the job.
        host = sa.Column(sa.String(NAME_LENGTH), nullable=True)
        #: ``ExceptionType: message`` of the last failure.
        error = sa.Column(sa.Text, nullable=True)
        traceback = sa.Column(sa.Text, nullable=True)

        def __repr__(self) -> str:
            return f"<BackgroundJob {self.job_id} {self.name!r} {self.state}>"

    return BackgroundJob



class RecordWriter:
    """Writes job records in their own session, swallowing (and logging) failures.

    Every method needs an app context of the app whose ``db`` it writes to.
    """

    def __init__(
        self,
        db: SQLAlchemy,
        model: Any,
        *,
        enabled: bool = True,
        retention_days: float | None = None,
    ) -> None:
        self.db = db
        self.model = model
        self.enabled = enabled
        self.retention_days = retention_days
        self.prune_gate = AtMostEvery(PRUNE_INTERVAL)

    def create(self, job_id: str, name: str, arguments: str, backend: str) -> None:
        """Insert the record of a job that is being queued (and prune now and then)."""
        self._write(
            job_id,
            name,
            {"arguments": arguments, "backend": backend, "state": QUEUED, "queued_at": utcnow()},
        )
        self._maybe_prune()

    def _maybe_prune(self) -> None:
        if not self.enabled or self.retention_days is None or not self.prune_gate.due():
            return
        try:
            self.prune(self.retention_days)
        except Exception:
            report_write_failure(log, "pruning of old background job records")

    def prune(self, days: float) -> int:
        """Delete records of jobs queued more than ``days`` ago; return how many."""
        cutoff = utcnow() - datetime.timedelta(days=days)
        table = self.model.__table__
        with bookkeeping_engine(self.db).begin() as connection:
            result = connection.execute(table.delete().where(table.c.queued_at < cutoff))
        return int(result.rowcount or 0)

    def update(self, job_id: str, name: str, **fields: Any) -> None:
        """Update a job's record; insert it if it is missing (its insert failed)."""
        self._write(job_id, name, fields)

    def _write(self, job_id: str, name: str, fields: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if "error" in fields:
            fields["error"] = cut_text(fields["error"], ERROR_LENGTH)
        if "traceback" in fields:
            fields["traceback"] = cut_text(fields["traceback"], TRACEBACK_LENGTH, keep_tail=True)
        model = self.model
        try:
            with Session(bookkeeping_engine(self.db)) as session, session.begin():
                row = session.scalar(sa.select(model).where(model.job_id == job_id))
                if row is None:
                    row = model(job_id=job_id, name=cut_text(name, NAME_LENGTH), queued_at=utcnow())
                    session.add(row)
                for key, value in fields.items():
                    setattr(row, key, value)
        except Exception:  # a record must never break a job or a worker
            report_write_failure(log, f"the record of background job {job_id} ({name})")
