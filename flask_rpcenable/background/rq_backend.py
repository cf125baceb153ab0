"""The RQ backend: postponed calls go to an RQ queue on Redis.

Each call is enqueued as :func:`execute` with the function's import path
(``module:qualname``) and its (pickled) arguments. ``flask rpc worker``
(:func:`~.rq_worker.run_worker`) runs an RQ worker that knows the app: :func:`execute`
imports the function again and runs it like the in-process backends do,
inside an app context, with a job record and the error mail. Retries are
RQ's own (``Retry(max=RPCENABLE_BACKGROUND_RETRIES)``); only the last failure
is mailed. The worker side (:mod:`.rq_worker`) reports what RQ handles
without our code: killed work horses, jobs lost between queue and start,
abandoned jobs.
"""

from __future__ import annotations

import importlib
import logging
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq import Queue, Retry, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from .core import BackgroundJobFailed, JobSpec, get_background
from .settings import REDIS_CONNECT_TIMEOUT, REDIS_READ_TIMEOUT

if TYPE_CHECKING:
    from .core import Background

log = logging.getLogger("flask_rpcenable.background")

META_NAME = "rpcenable_name"
META_SUMMARY = "rpcenable_arguments"
META_RETRIES = "rpcenable_retries"
#: How long the held-back counter of the mail throttle lives in Redis.
HELD_TTL = 7 * 24 * 3600

_STATUS = {
    JobStatus.QUEUED: "queued",
    JobStatus.CREATED: "queued",
    JobStatus.DEFERRED: "queued",
    JobStatus.SCHEDULED: "queued",
    JobStatus.STARTED: "running",
    JobStatus.FINISHED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.STOPPED: "failed",
    JobStatus.CANCELED: "failed",
}
_FINAL = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}

#: The app of the ``flask rpc worker`` process (inherited by its work horses).
_worker_app: Flask | None = None


class RedisThrottle:
    """One mail per key per window, shared by every worker through Redis."""

    def __init__(self, connection: Redis, prefix: str) -> None:
        self.connection = connection
        self.prefix = prefix

    def acquire(self, key: str, window: float) -> int | None:
        base = f"{self.prefix}:{key}"
        if window > 0 and not self.connection.set(
            f"{base}:sent", "1", nx=True, px=max(1, int(window * 1000))
        ):
            pipe = self.connection.pipeline()
            pipe.incr(f"{base}:held")
            pipe.expire(f"{base}:held", HELD_TTL)
            pipe.execute()
            return None
        pipe = self.connection.pipeline()
        pipe.get(f"{base}:held")
        pipe.delete(f"{base}:held")
        held, _ = pipe.execute()
        return int(held or 0)

    def give_back(self, key: str, count: int) -> None:
        pipe = self.connection.pipeline()
        pipe.incrby(f"{self.prefix}:{key}:held", count)
        pipe.expire(f"{self.prefix}:{key}:held", HELD_TTL)
        pipe.execute()


class RQJobHandle:
    """The handle of a job sent to RQ; asks Redis for its state."""

    def __init__(self, job_id: str, name: str, connection: Redis) -> None:
        self.id = job_id
        self.name = name
        self.connection = connection

    def _job(self) -> Job:
        try:
            return Job.fetch(self.id, connection=self.connection)
        except NoSuchJobError:
            raise LookupError(
                f"Background job {self.id} ({self.name}) is not in Redis any more "
                "(RQ drops finished jobs after their result TTL); see its job record."
            ) from None

    @property
    def status(self) -> str:
        return _STATUS.get(self._job().get_status(), "queued")

    def done(self) -> bool:
        return self._job().get_status() in _FINAL

    def result(self, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.02
        while True:
            job = self._job()
            status = job.get_status()
            if status == JobStatus.FINISHED:
                return job.return_value(refresh=True)
            if status in _FINAL:
                latest = job.latest_result()
                text = (latest.exc_string if latest is not None else "") or ""
                last_line = text.strip().splitlines()[-1] if text.strip() else status.value
                raise BackgroundJobFailed(self.id, self.name, last_line, text)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"Background job {self.id} ({self.name}) did not finish within "
                        f"{timeout} s (status: {status.value})"
                    )
                delay = min(delay, remaining)
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {self.name} (rq)>"


def _resolve(target: str) -> Any:
    """The object at ``module:qualname``."""
    module_name, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def check_importable(spec: JobSpec) -> None:
    """Make sure a worker can import ``spec``'s function by its path.

    :raises RuntimeError: for functions in ``__main__``, nested in other
        functions, or not reachable under their own name.
    """
    module_name, _, qualname = spec.target.partition(":")
    problem = None
    if module_name == "__main__":
        problem = "it is defined in __main__, which is another module in the worker"
    elif "<locals>" in qualname:
        problem = "it is defined inside another function"
    else:
        try:
            obj = _resolve(spec.target)
        except (ImportError, AttributeError) as exc:
            problem = f"importing it failed ({type(exc).__name__}: {exc})"
        else:
            if getattr(obj, "func", None) is not spec.func:
                problem = f"{spec.target} is another object (was the name reused?)"
    if problem:
        raise RuntimeError(
            f"The rq backend cannot run {spec.name}: {problem}. Workers import postponed "
            "functions by their module path: define them at module level in an importable "
            "module."
        )


class RQBackend:
    """Sends jobs to an RQ queue."""

    name = "rq"

    def __init__(self, background: Background) -> None:
        settings = background.settings
        self.background = background
        # Short timeouts: scheduling must not hang a request on a frozen Redis.
        # Options in the URL (?socket_timeout=...) win.
        self.connection = Redis.from_url(
            settings.rq_url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
            socket_timeout=REDIS_READ_TIMEOUT,
        )
        self.queue = Queue(settings.rq_queue, connection=self.connection)
        self.job_timeout = settings.rq_job_timeout
        self.throttle = RedisThrottle(
            self.connection, f"rpcenable:mail-throttle:{settings.rq_queue}"
        )

    def submit(self, app: Flask, spec: JobSpec) -> RQJobHandle:
        check_importable(spec)
        self.queue.enqueue_call(
            execute,
            args=(spec.target, spec.args, spec.kwargs),
            job_id=spec.id,
            timeout=self.job_timeout,
            description=f"{spec.name}({spec.summary})",
            meta={META_NAME: spec.name, META_SUMMARY: spec.summary, META_RETRIES: spec.retries},
            retry=Retry(max=spec.retries) if spec.retries else None,
        )
        return RQJobHandle(spec.id, spec.name, self.connection)

    def shutdown(self, timeout: float | None = None) -> None:
        """Nothing to stop: the jobs wait in Redis."""


def _app() -> Flask:
    if _worker_app is not None:
        return _worker_app
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
    raise RuntimeError(
        "flask-rpcenable background jobs need their Flask app: run the worker with "
        "'flask --app yourapp rpc worker', not 'rq worker'."
    )


def attempt_of(job: Job | None, retries: int) -> tuple[int, bool]:
    """(this attempt's number, whether it is the last one)."""
    if job is None:
        return 1, True
    left = job.retries_left or 0
    return retries - left + 1, not job.should_retry


def execute(target: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """Run one postponed call inside an RQ worker (this is what RQ imports and calls)."""
    app = _app()
    postponed = _resolve(target)
    func = getattr(postponed, "func", None)
    if func is None:
        raise TypeError(f"{target} is not a @postpone function")
    job = get_current_job()
    meta = job.meta if job is not None else {}
    retries = int(meta.get(META_RETRIES, 0))
    background = get_background(app)
    spec = JobSpec(
        id=job.id if job is not None else uuid.uuid4().hex,
        name=postponed.job_name,
        target=target,
        func=func,
        args=tuple(args),
        kwargs=dict(kwargs),
        summary=str(meta.get(META_SUMMARY, "")),
        retries=retries,
    )
    attempt, last = attempt_of(job, retries)
    outcome = background.run(app, spec, attempt=attempt, last_attempt=last)
    if not outcome.ok:
        assert outcome.error is not None
        raise outcome.error
    return outcome.value


def set_worker_app(app: Flask) -> None:
    """Make ``app`` the app :func:`execute` runs jobs in (the ``flask rpc worker`` process)."""
    global _worker_app
    _worker_app = app
