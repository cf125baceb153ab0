"""What every background backend shares: job specs, handles, and running one job.

A backend only moves jobs (a thread pool, RQ, or the caller's own thread);
:class:`Background` runs them the same way everywhere: inside an app context
of the app that scheduled them, with a job record, the database session
removed afterwards, and a throttled error mail when the last attempt fails.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask

from ..db import utcnow
from ..state import primary_state
from .mail import (
    ErrorReporter,
    FailureReport,
    MemoryThrottle,
    Throttle,
    host_name,
    summarize_arguments,
)
from .records import FAILED, QUEUED, RUNNING, SUCCEEDED, RecordWriter

if TYPE_CHECKING:
    from ..state import RPCState
    from .settings import BackgroundSettings

log = logging.getLogger("flask_rpcenable.background")



class BackgroundQueueFull(RuntimeError):
    """The in-process job queue is full: the job was not scheduled."""


class BackgroundJobFailed(RuntimeError):
    """Raised by ``handle.result()`` when the job failed.

    :ivar job_id: the job's id.
    :ivar name: ``module.function`` of the job.
    :ivar traceback: the job's traceback as text (may be empty).
    """

    def __init__(self, job_id: str, name: str, error: str, traceback_text: str = "") -> None:
        super().__init__(f"Background job {job_id} ({name}) failed: {error}")
        self.job_id = job_id
        self.name = name
        self.traceback = traceback_text


@dataclass
class JobSpec:
    """One postponed call, as the backends move it."""

    id: str
    #: ``module.qualname`` of the function, for people.
    name: str
    #: ``module:qualname``, for importing it again (RQ).
    target: str
    #: The original (undecorated) function; ``None`` where only the name is known.
    func: Callable[..., Any] | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    summary: str
    retries: int


@dataclass
class Outcome:
    """How one run of a job ended."""

    ok: bool
    value: Any = None
    error: BaseException | None = None
    error_text: str = ""
    traceback: str = ""


class JobHandle(Protocol):
    """What calling a postponed function returns."""

    #: The job's id (also the job record's ``job_id``).
    id: str
    #: ``module.function`` of the job.
    name: str

    @property
    def status(self) -> str:
        """``queued``, ``running``, ``succeeded`` or ``failed``."""

    def done(self) -> bool:
        """Whether the job has finished (succeeded or failed for good)."""

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job and return its return value.

        :param timeout: seconds to wait; ``None`` waits as long as it takes.
        :raises TimeoutError: if the job has not finished in time.
        :raises BackgroundJobFailed: if it failed.
        """


class LocalJobHandle:
    """The handle of a job run in this process (thread and sync backends)."""

    def __init__(self, spec: JobSpec) -> None:
        self.id = spec.id
        self.name = spec.name
        self._status = QUEUED
        self._event = threading.Event()
        self._outcome: Outcome | None = None

    @property
    def status(self) -> str:
        return self._status

    def done(self) -> bool:
        return self._event.is_set()

    def result(self, timeout: float | None = None) -> Any:
        if not self._event.wait(timeout):
            raise TimeoutError(
                f"Background job {self.id} ({self.name}) did not finish within {timeout} s"
            )
        outcome = self._outcome
        assert outcome is not None
        if outcome.ok:
            return outcome.value
        raise BackgroundJobFailed(
            self.id, self.name, outcome.error_text, outcome.traceback
        ) from outcome.error

    def set_running(self) -> None:
        self._status = RUNNING

    def finish(self, outcome: Outcome) -> None:
        self._outcome = outcome
        self._status = SUCCEEDED if outcome.ok else FAILED
        self._event.set()

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {self.name} {self._status}>"


class Backend(Protocol):
    """Moves jobs to where they run."""

    name: str
    #: The mail throttle store fitting the backend (shared by its workers).
    throttle: Throttle

    def submit(self, app: Flask, spec: JobSpec) -> JobHandle: ...

    def shutdown(self, timeout: float | None = None) -> None: ...


def error_text(exc: BaseException) -> str:
    """``ExceptionType: message``."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@dataclass
class Background:
    """One app's background jobs: settings, backend, records and error mail."""

    settings: BackgroundSettings
    state: RPCState
    records: RecordWriter
    #: Builds the backend for this :class:`Background` (thread, sync or RQ).
    make_backend: Callable[[Background], Backend]
    backend: Backend = field(init=False)
    reporter: ErrorReporter = field(init=False)

    def __post_init__(self) -> None:
        self.backend = self.make_backend(self)
        self.reporter = ErrorReporter(
            self.settings.admins,
            self.backend.throttle,
            self.settings.mail_throttle,
            self.settings.mail_timeout,
        )

    # -- scheduling ---------------------------------------------------------------

    def make_spec(
        self,
        func: Callable[..., Any],
        name: str,
        target: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retries: int | None,
    ) -> JobSpec:
        """Describe one call of ``func``.

        :raises TypeError: when the arguments do not fit ``func``'s signature
            (the caller learns it at once, not a worker later).
        """
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):  # builtins without a signature
            signature = None
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{name}: {exc}") from None
        return JobSpec(
            id=uuid.uuid4().hex,
            name=name,
            target=target,
            func=func,
            args=args,
            kwargs=kwargs,
            summary=summarize_arguments(func, args, kwargs, self.settings.redact_keys),
            retries=self.settings.retries if retries is None else retries,
        )

    def submit(self, app: Flask, spec: JobSpec) -> JobHandle:
        """Record ``spec`` as queued and hand it to the backend; needs an app context.

        :raises BackgroundQueueFull: when the in-process queue is full.
        """
        self.records.create(spec.id, spec.name, spec.summary, self.backend.name)
        try:
            return self.backend.submit(app, spec)
        except BaseException as exc:
            log.error(
                "Background job %s (%s) was not scheduled: %s", spec.id, spec.name, error_text(exc)
            )
            self.records.update(
                spec.id,
                spec.name,
                state=FAILED,
                finished_at=utcnow(),
                error=f"Not scheduled: {error_text(exc)}",
            )
            raise

    # -- running ------------------------------------------------------------------

    def run(self, app: Flask, spec: JobSpec, *, attempt: int, last_attempt: bool) -> Outcome:
        """Run one attempt of ``spec`` in a fresh app context of ``app``."""
        assert spec.func is not None
        with app.app_context():
            self.records.update(
                spec.id,
                spec.name,
                state=RUNNING,
                started_at=utcnow(),
                attempts=attempt,
                host=host_name(),
            )
            start = time.perf_counter()
            try:
                outcome = Outcome(ok=True, value=spec.func(*spec.args, **spec.kwargs))
            except BaseException as exc:  # noqa: B036 - a job must never kill its worker
                outcome = Outcome(
                    ok=False,
                    error=exc,
                    error_text=error_text(exc),
                    traceback=traceback.format_exc(),
                )
            finally:
                self._remove_session()
            duration_ms = (time.perf_counter() - start) * 1000.0
            if outcome.ok:
                self.records.update(
                    spec.id,
                    spec.name,
                    state=SUCCEEDED,
                    finished_at=utcnow(),
                    duration_ms=duration_ms,
                    error=None,
                    traceback=None,
                )
            else:
                self.failed(
                    app,
                    spec,
                    outcome.error_text,
                    outcome.traceback,
                    attempt=attempt,
                    last_attempt=last_attempt,
                    duration_ms=duration_ms,
                    exc=outcome.error,
                )
        return outcome

    def run_attempts(self, app: Flask, spec: JobSpec) -> Outcome:
        """Run ``spec`` up to ``1 + spec.retries`` times, until it succeeds."""
        total = spec.retries + 1
        outcome = Outcome(ok=False)
        for attempt in range(1, total + 1):
            outcome = self.run(app, spec, attempt=attempt, last_attempt=attempt == total)
            if outcome.ok:
                break
        return outcome

    def failed(
        self,
        app: Flask,
        spec: JobSpec,
        error: str,
        traceback_text: str,
        *,
        attempt: int,
        last_attempt: bool,
        duration_ms: float | None = None,
        exc: BaseException | None = None,
    ) -> None:
        """Log, record and (on the last attempt) mail a failure; needs an app context."""
        total = spec.retries + 1
        if last_attempt:
            log.error(
                "Background job %s (%s) failed (attempt %d of %d): %s",
                spec.id,
                spec.name,
                attempt,
                total,
                error,
                exc_info=exc,
            )
        else:
            log.warning(
                "Background job %s (%s) failed (attempt %d of %d), retrying: %s",
                spec.id,
                spec.name,
                attempt,
                total,
                error,
            )
        self.records.update(
            spec.id,
            spec.name,
            state=FAILED if last_attempt else QUEUED,
            finished_at=utcnow() if last_attempt else None,
            duration_ms=duration_ms,
            error=error,
            traceback=traceback_text,
        )
        if last_attempt:
            self.reporter.report(
                app,
                FailureReport(
                    job_id=spec.id,
                    name=spec.name,
                    arguments=spec.summary,
                    error=error,
                    traceback=traceback_text,
                    backend=self.backend.name,
                    attempt=attempt,
                    attempts=total,
                    host=host_name(),
                    when=utcnow(),
                ),
            )

    def _remove_session(self) -> None:
        try:
            self.state.db.session.remove()
        except Exception:
            log.warning(
                "Removing the database session after a background job failed", exc_info=True
            )



def get_background(app: Flask) -> Background:
    """The :class:`Background` of ``app`` (its primary RPCEnable's).

    :raises RuntimeError: if flask-rpcenable is not set up on ``app``.
    """
    state = primary_state(app)
    if state is not None and state.background is not None:
        return state.background
    raise RuntimeError(
        f"Background jobs are not set up on app {app.name!r}: call rpc.init_app(app) "
        "before running postponed functions."
    )


__all__ = [
    "Background",
    "BackgroundJobFailed",
    "BackgroundQueueFull",
    "JobHandle",
    "JobSpec",
    "LocalJobHandle",
    "MemoryThrottle",
    "Outcome",
    "get_background",
]
