"""The ``BackgroundJob`` model and the writer of job records.

One row per postponed call: queued when it is scheduled, then running,
succeeded or failed. Rows are written in a session of their own, never in
``db.session``, so they neither commit nor roll back the job's own work; and
a failed write is tried once more, then logged, never raised into a worker.

No record stays ``queued`` or ``running`` for ever: jobs left at shutdown are
marked failed in one statement (:meth:`RecordWriter.abandon`), and the
records a killed process left behind are marked failed by the next process
on the same host that starts running jobs (:meth:`RecordWriter.sweep_dead`);
those of a host gone for good, or queued long ago, by an operator with
``flask rpc fail-lost-jobs`` (:meth:`RecordWriter.fail_lost`).
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..bookkeeping import bookkeeping_transaction
from ..db import AtMostEvery, id_column, once_per_db, report_write_failure, utcnow
from ..redact import cut_text
from .mail import host_name, process_alive

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
            {
                "arguments": arguments,
                "backend": backend,
                "state": QUEUED,
                "queued_at": utcnow(),
                "host": host_name(),
            },
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
        result = bookkeeping_transaction(
            self.db, lambda conn: conn.execute(table.delete().where(table.c.queued_at < cutoff))
        )
        return int(result.rowcount or 0)

    def update(self, job_id: str, name: str, **fields: Any) -> None:
        """Update a job's record; insert it if it is missing (its insert failed)."""
        self._write(job_id, name, fields)

    def state_of(self, job_id: str) -> str | None:
        """The state recorded for a job, or ``None`` (no record, records off, database down)."""
        if not self.enabled:
            return None
        table = self.model.__table__
        try:
            return bookkeeping_transaction(
                self.db,
                lambda conn: conn.scalar(sa.select(table.c.state).where(table.c.job_id == job_id)),
            )
        except Exception:
            report_write_failure(log, f"the record of background job {job_id}")
            return None

    def pending(self, backend: str, limit: int) -> list[tuple[str, str]]:
        """``(job id, name)`` of up to ``limit`` records of ``backend`` still queued or running."""
        table = self.model.__table__
        query = (
            sa.select(table.c.job_id, table.c.name)
            .where(table.c.backend == backend, table.c.state.in_((QUEUED, RUNNING)))
            .order_by(table.c.queued_at)
            .limit(limit)
        )
        rows = bookkeeping_transaction(self.db, lambda conn: conn.execute(query).all())
        return [(row.job_id, row.name) for row in rows]

    def abandon(self, queued: list[str], running: list[str], error: str) -> int:
        """Mark jobs this process gives up on as failed, in one statement.

        Only records still ``queued`` or ``running`` change: a job that
        finished meanwhile keeps its ``succeeded`` or ``failed``. ``error``
        may hold ``{state}``, replaced by "still queued" or "still running".

        :returns: how many records changed.
        """
        if not self.enabled or not (queued or running):
            return 0
        table = self.model.__table__
        message = sa.case(
            (table.c.state == RUNNING, cut_text(error.format(state="still running"), ERROR_LENGTH)),
            else_=cut_text(error.format(state="still queued"), ERROR_LENGTH),
        )
        statement = (
            table.update()
            .where(table.c.job_id.in_([*queued, *running]), table.c.state.in_((QUEUED, RUNNING)))
            .values(state=FAILED, finished_at=utcnow(), error=message)
        )
        try:
            result = bookkeeping_transaction(self.db, lambda conn: conn.execute(statement))
        except Exception:
            report_write_failure(log, "the records of abandoned background jobs")
            return 0
        return int(result.rowcount or 0)

    def fail_lost(
        self, why: str, *, host: str | None = None, before: datetime.datetime | None = None
    ) -> int:
        """Mark failed the records still queued or running that an operator declares lost.

        For what no process can sweep (:meth:`sweep_dead` covers dead
        processes of its own machine): the records of ``host``, a machine
        gone for good (every process of it), and those queued before
        ``before``, long enough ago that none can still be running. Given
        both, a record must match both. ``why`` becomes their error.

        :returns: how many records changed.
        """
        if host is None and before is None:
            raise ValueError("give host, before or both")
        table = self.model.__table__
        where = [table.c.state.in_((QUEUED, RUNNING))]
        if host is not None:
            where.append(table.c.host.startswith(f"{host} (pid ", autoescape=True))
        if before is not None:
            where.append(table.c.queued_at < before)
        statement = (
            table.update()
            .where(*where)
            .values(state=FAILED, finished_at=utcnow(), error=cut_text(why, ERROR_LENGTH))
        )
        result = bookkeeping_transaction(self.db, lambda conn: conn.execute(statement))
        return int(result.rowcount or 0)

    def sweep_dead(self, backends: tuple[str, ...]) -> int:
        """Mark failed the records that dead processes of this host left queued or running.

        A process killed outright (``SIGKILL``, the out-of-memory killer, a
        worker timeout) cannot mark its jobs; they would stay ``queued`` or
        ``running`` for ever. Each record names the process that queued or
        ran it (``host (pid N)``): records of this host whose process is gone
        are marked failed, one statement per dead process. Records of other
        hosts are left to those hosts.

        :returns: how many records changed.
        """
        if not self.enabled:
            return 0
        table = self.model.__table__
        me = host_name()
        prefix = me[: me.rindex("(pid ") + 5]
        pending = table.c.state.in_((QUEUED, RUNNING)) & table.c.backend.in_(backends)
        changed = 0
        try:
            hosts = bookkeeping_transaction(
                self.db,
                lambda conn: conn.scalars(
                    sa.select(table.c.host).distinct().where(
                        pending, table.c.host.startswith(prefix, autoescape=True)
                    )
                ).all(),
            )
            for host in hosts:
                pid = host[len(prefix) :].rstrip(")")
                if host == me or not pid.isdigit() or process_alive(int(pid)):
                    continue
                error = (
                    f"Lost: the process that held this job ({host}) ended without finishing "
                    "it (killed, or stopped before its shutdown timeout); found by "
                    f"{me} at its start."
                )
                statement = (
                    table.update()
                    .where(pending, table.c.host == host)
                    .values(state=FAILED, finished_at=utcnow(), error=error)
                )
                result = bookkeeping_transaction(self.db, lambda c, s=statement: c.execute(s))
                changed += int(result.rowcount or 0)
        except Exception:
            report_write_failure(log, "the records of jobs of dead processes")
        if changed:
            log.error("Marked %d background job record(s) of dead processes as failed", changed)
        return changed

    def _write(self, job_id: str, name: str, fields: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if "error" in fields:
            fields["error"] = cut_text(fields["error"], ERROR_LENGTH)
        if "traceback" in fields:
            fields["traceback"] = cut_text(fields["traceback"], TRACEBACK_LENGTH, keep_tail=True)
        model = self.model

        def write(connection: sa.Connection) -> None:
            with Session(connection) as session:
                row = session.scalar(sa.select(model).where(model.job_id == job_id))
                if row is None:
                    row = model(job_id=job_id, name=cut_text(name, NAME_LENGTH), queued_at=utcnow())
                    session.add(row)
                for key, value in fields.items():
                    setattr(row, key, value)
                session.flush()

        try:
            bookkeeping_transaction(self.db, write)
        except Exception:  # a record must never break a job or a worker
            report_write_failure(log, f"the record of background job {job_id} ({name})")
