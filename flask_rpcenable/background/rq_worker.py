"""The worker side of the RQ backend: ``flask rpc worker``.

:func:`run_worker` runs an RQ worker that knows the app. Besides running
:func:`~.rq_backend.execute`, it reports what RQ handles without our code, so
that a job record never stays ``queued`` or ``running`` for a job that is gone:

- a work horse that dies without a Python exception (killed by a signal or
  the out-of-memory killer): recorded and mailed at once;
- a job a killed worker had taken from the queue but not started (RQ's
  "stuck in intermediate queue"): a worker's maintenance (at its start and
  every :data:`MAINTENANCE_INTERVAL` seconds) notices it, and fails it once
  it has been seen there for a minute;
- a job whose worker died while it ran ("abandoned", found by maintenance
  once its timeout has passed).

The record and the mail say which of these happened.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker, Worker
from rq.exceptions import AbandonedJobError, NoSuchJobError
from rq.job import Job, JobStatus

from ..db import utcnow
from .core import JobSpec, get_background
from .records import FAILED, QUEUED, SUCCEEDED
from .rq_backend import META_NAME, META_RETRIES, META_SUMMARY, RQBackend, attempt_of, set_worker_app
from .settings import REDIS_CONNECT_TIMEOUT

log = logging.getLogger("flask_rpcenable.background")

#: Seconds between a worker's maintenance runs (RQ's default is 600): how soon
#: jobs of dead workers are noticed.
MAINTENANCE_INTERVAL = 60
_fork_hook_installed = False


def _failed_spec(job: Job, meta: dict[str, Any], retries: int) -> JobSpec:
    """The spec of an RQ job that failed outside its function, for its record and mail."""
    return JobSpec(
        id=job.id,
        name=str(meta.get(META_NAME) or job.func_name),
        target="",
        func=None,
        args=(),
        kwargs={},
        summary=str(meta.get(META_SUMMARY, "")),
        retries=retries,
    )


def _horse_killed(app: Flask, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
    """Record and mail a job whose work horse died without a Python exception."""
    try:
        with app.app_context():
            background = get_background(app)
            meta = job.meta
            retries = int(meta.get(META_RETRIES, 0))
            how = f"wait status {ret_val}"
            if ret_val and os.WIFSIGNALED(ret_val):
                how = f"signal {os.WTERMSIG(ret_val)}"
            error = (
                f"WorkHorseTerminated: the process running the job (pid {retpid}) "
                f"ended unexpectedly ({how})"
            )
            spec = _failed_spec(job, meta, retries)
            attempt, last = attempt_of(job, retries)
            background.failed(
                app,
                spec,
                error,
                error + "\nNo traceback: the process was killed (a signal, the out-of-memory "
                "killer, os._exit) before Python could report anything.",
                attempt=attempt,
                last_attempt=last,
            )
    except Exception:
        log.exception("Reporting the killed work horse of job %s failed", job.id)


def _install_fork_hook(engines: list[Any]) -> None:
    """Forked work horses must not share the worker's database connections.

    The app's engines are disposed of here; the library's own bookkeeping
    engines in every forked child
    (:func:`flask_rpcenable.bookkeeping.dispose_after_fork`).
    """
    global _fork_hook_installed
    if _fork_hook_installed or not hasattr(os, "register_at_fork"):
        return

    def dispose() -> None:
        for engine in engines:
            engine.dispose(close=False)

    os.register_at_fork(after_in_child=dispose)
    _fork_hook_installed = True


def record_rq_failure(app: Flask, job: Job, error: str, *, retrying: bool) -> None:
    """Record (and on the last attempt mail) a failure RQ handled without our code.

    Nothing happens when the job's record already says how it ended (our
    :func:`execute` recorded it). Otherwise the record is marked failed, or
    queued again when RQ retries the job.
    """
    try:
        with app.app_context():
            background = get_background(app)
            if background.records.state_of(job.id) in (FAILED, SUCCEEDED):
                return
            meta = job.meta
            retries = int(meta.get(META_RETRIES, 0))
            if retrying:
                background.records.update(
                    job.id, str(meta.get(META_NAME) or job.func_name), state=QUEUED, error=error
                )
                return
            spec = _failed_spec(job, meta, retries)
            background.failed(
                app, spec, error, error, attempt=retries + 1, last_attempt=True
            )
    except Exception:
        log.exception("Recording the failure of job %s failed", job.id)


class _RecordingWorker:
    """Mixed into RQ's workers: failures RQ handles itself reach our records and mail."""

    rpcenable_app: Flask

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: Any = None,
        exc_string: str = "",
        execution: Any = None,
    ) -> None:
        retrying = bool(job.should_retry)
        super().handle_job_failure(  # type: ignore[misc]
            job, queue, started_job_registry=started_job_registry, exc_string=exc_string,
            execution=execution,
        )
        if "intermediate queue" in exc_string:
            error = (
                "Lost: a worker took the job from the queue but ended before starting it "
                f"(RQ: {exc_string.strip()})"
            )
        else:
            error = f"RQ failed the job: {exc_string.strip() or 'no reason given'}"
        record_rq_failure(self.rpcenable_app, job, error, retrying=retrying)


    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()  # type: ignore[misc]
        reconcile_records(self.rpcenable_app, self.connection)  # type: ignore[attr-defined]


#: Most records looked at by one :func:`reconcile_records`.
RECONCILE_BATCH = 500


def reconcile_records(app: Flask, connection: Redis) -> int:
    """Bring ``queued``/``running`` records of RQ jobs in line with what RQ knows.

    A record can lag behind its job: the job ended while the database was
    down (its last record write failed), or Redis lost the job. At each
    maintenance (a worker's start, then every :data:`MAINTENANCE_INTERVAL`
    seconds) such records get the job's final state, or "failed: lost" when
    Redis no longer has the job. Records of jobs RQ still holds are left alone.

    :returns: how many records changed.
    """
    changed = 0
    try:
        with app.app_context():
            background = get_background(app)
            records = background.records
            if not records.enabled:
                return 0
            for job_id, name in records.pending("rq", RECONCILE_BATCH):
                try:
                    job = Job.fetch(job_id, connection=connection)
                    status = job.get_status()
                except NoSuchJobError:
                    job, status = None, None
                if status == JobStatus.FINISHED:
                    records.update(job_id, name, state=SUCCEEDED, error=None)
                elif status is None or status in (
                    JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED
                ):
                    latest = job.latest_result() if job is not None else None
                    text = ((latest.exc_string if latest is not None else "") or "").strip()
                    why = text.splitlines()[-1] if text else (
                        status.value if status is not None else "not in Redis any more"
                    )
                    records.update(
                        job_id, name, state=FAILED, finished_at=utcnow(),
                        error=f"Lost: the job ended ({why}) but its record was not written "
                        "then; corrected by a worker's maintenance",
                    )
                else:
                    continue
                changed += 1
    except Exception:
        log.exception("Reconciling the records of RQ jobs failed")
    if changed:
        log.warning("Corrected %d record(s) of RQ jobs that had ended", changed)
    return changed


class RecordingWorker(_RecordingWorker, Worker):
    """RQ's forking worker, with failures recorded."""


class RecordingSimpleWorker(_RecordingWorker, SimpleWorker):
    """RQ's worker that runs jobs in its own process, with failures recorded."""


def _abandoned_handler(app: Flask) -> Any:
    """An RQ exception handler for jobs whose worker died while they ran."""

    def handle(job: Job, exc_type: Any, exc_value: Any, tb: Any) -> bool:
        if isinstance(exc_type, type) and issubclass(exc_type, AbandonedJobError):
            error = (
                "Abandoned: the worker running the job ended without finishing it "
                "(killed, or its machine went away); found by a worker's maintenance"
            )
            record_rq_failure(app, job, error, retrying=bool(job.retries_left))
        return True  # let RQ's other handlers run too

    return handle


def make_worker(
    app: Flask,
    *,
    queues: Sequence[str] = (),
    simple: bool = False,
    name: str | None = None,
) -> Worker:
    """An RQ worker for ``app``'s jobs (see :func:`run_worker`); needs an app context."""
    background = get_background(app)
    backend = background.backend
    if not isinstance(backend, RQBackend):
        raise RuntimeError(
            "flask rpc worker runs jobs of the rq backend: set RPCENABLE_BACKGROUND = 'rq' "
            f"(it is {background.settings.backend!r})."
        )
    set_worker_app(app)
    _install_fork_hook(list(background.state.db.engines.values()))
    names = list(queues) or [background.settings.rq_queue]
    # A connection of its own, without our short read timeout: RQ waits for
    # jobs with blocking commands and sets the socket timeout it needs.
    connection = Redis.from_url(
        background.settings.rq_url, socket_connect_timeout=REDIS_CONNECT_TIMEOUT
    )
    worker_class = RecordingSimpleWorker if simple else RecordingWorker
    worker = worker_class(
        [Queue(queue_name, connection=connection) for queue_name in names],
        connection=connection,
        name=name,
        work_horse_killed_handler=functools.partial(_horse_killed, app),
        maintenance_interval=MAINTENANCE_INTERVAL,
    )
    worker.rpcenable_app = app
    worker.push_exc_handler(_abandoned_handler(app))
    return worker


def run_worker(
    app: Flask,
    *,
    queues: Sequence[str] = (),
    burst: bool = False,
    simple: bool = False,
    max_jobs: int | None = None,
    name: str | None = None,
) -> bool:
    """Run an RQ worker for ``app``'s jobs; needs an app context of ``app``.

    :param queues: queue names; defaults to ``RPCENABLE_RQ_QUEUE``.
    :param burst: run the jobs waiting now, then return.
    :param simple: run jobs in this process instead of a forked work horse
        (for platforms without ``fork``; a crashing job then ends the worker).
    :returns: whether any job was run.
    """
    worker = make_worker(app, queues=queues, simple=simple, name=name)
    log.info("Worker for %s listening on %s", app.name, ", ".join(q.name for q in worker.queues))
    sys.stdout.flush()
    return bool(worker.work(burst=burst, max_jobs=max_jobs))
