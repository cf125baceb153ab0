"""In-process backends: a bounded thread pool (the default) and ``sync``.

The pool starts its threads at the first job, not at import, and starts
again in a forked child (gunicorn ``--preload``): the child never runs the
parent's queued jobs, it gets a fresh, empty pool. Idle threads end after a
while and come back when jobs arrive. At interpreter exit the queue is
drained for up to ``RPCENABLE_BACKGROUND_SHUTDOWN_TIMEOUT`` seconds; every
job that could not run is logged and its record marked failed.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import traceback
import weakref
from typing import TYPE_CHECKING

from flask import Flask

from .core import BackgroundQueueFull, JobSpec, LocalJobHandle, Outcome, error_text
from .mail import MemoryThrottle, host_name
from .records import RUNNING

if TYPE_CHECKING:
    from .core import Background

log = logging.getLogger("flask_rpcenable.background")

#: Seconds an idle worker thread waits for a job before it ends.
IDLE_TIMEOUT = 30.0
#: The backends whose jobs live and die with the process that queued them.
IN_PROCESS_BACKENDS = ("thread", "sync")

_Item = tuple[Flask, JobSpec, LocalJobHandle]

_pools: weakref.WeakSet[ThreadBackend] = weakref.WeakSet()
_pools_lock = threading.Lock()


class ThreadBackend:
    """A bounded pool of daemon threads fed by a bounded queue."""

    name = "thread"

    def __init__(self, background: Background) -> None:
        self.background = background
        settings = background.settings
        self.max_workers = settings.workers
        self.queue_size = settings.queue_size
        self.shutdown_timeout = settings.shutdown_timeout
        self.throttle = MemoryThrottle()
        self._reset()

    def _reset(self) -> None:
        """Fresh, empty state: at creation and in a forked child."""
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=self.queue_size)
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._running: dict[str, _Item] = {}
        self._closed = False
        self._pid = os.getpid()
        #: Whether this process has looked for records left by dead processes.
        self._swept = False

    # -- submitting ---------------------------------------------------------------

    def submit(self, app: Flask, spec: JobSpec) -> LocalJobHandle:
        if self._pid != os.getpid():  # forked without the at-fork hook (belt and braces)
            self._reset()
        handle = LocalJobHandle(spec)
        with self._lock:
            if self._closed:
                raise RuntimeError(
                    f"Background job {spec.name} not scheduled: the worker pool is shut down "
                    "(the process is exiting)."
                )
            try:
                self._queue.put_nowait((app, spec, handle))
            except queue.Full:
                raise BackgroundQueueFull(
                    f"Background job {spec.name} not scheduled: the queue is full "
                    f"({self.queue_size} jobs waiting; RPCENABLE_BACKGROUND_QUEUE_SIZE). "
                    "Raise the queue size or the number of workers "
                    "(RPCENABLE_BACKGROUND_WORKERS), or use the rq backend."
                ) from None
            self._grow()
        with _pools_lock:
            _pools.add(self)
        return handle

    def _grow(self) -> None:
        """Start a thread if jobs wait that no idle thread will take (lock held)."""
        if self._queue.qsize() > self._idle and len(self._threads) < self.max_workers:
            thread = threading.Thread(
                target=self._work,
                name=f"rpcenable-background-{len(self._threads) + 1}",
                daemon=True,
            )
            self._threads.add(thread)
            self._idle += 1
            try:
                thread.start()
            except RuntimeError:  # "can't create new thread at interpreter shutdown"
                self._threads.discard(thread)
                self._idle -= 1
                log.warning("Could not start a background worker thread", exc_info=True)

    # -- working ------------------------------------------------------------------

    def _work(self) -> None:
        me = threading.current_thread()
        jobs = self._queue
        while True:
            try:
                item = jobs.get(timeout=IDLE_TIMEOUT)
            except queue.Empty:
                with self._lock:
                    if jobs.empty():
                        self._idle -= 1
                        self._threads.discard(me)
                        return
                continue
            with self._lock:
                self._idle -= 1
            try:
                self._run(item)
            except BaseException:  # noqa: B036 - the worker must outlive anything
                log.exception("Internal error in a background worker thread")
            finally:
                jobs.task_done()
                with self._lock:
                    self._idle += 1

    def _run(self, item: _Item) -> None:
        app, spec, handle = item
        if not self._swept:
            self._swept = True
            sweep_dead_processes(self.background, app)
        with self._lock:
            self._running[spec.id] = item
        handle.set_running()
        try:
            outcome = self.background.run_attempts(app, spec)
        except BaseException as exc:  # noqa: B036
            log.exception("Internal error running background job %s (%s)", spec.id, spec.name)
            outcome = Outcome(
                ok=False, error=exc, error_text=error_text(exc), traceback=traceback.format_exc()
            )
        finally:
            with self._lock:
                self._running.pop(spec.id, None)
        handle.finish(outcome)

    # -- stopping -----------------------------------------------------------------

    def shutdown(self, timeout: float | None = None) -> None:
        """Run what is queued for up to ``timeout`` seconds, then refuse new jobs.

        Jobs still queued after that are logged, marked failed and never run.
        ``None`` uses ``RPCENABLE_BACKGROUND_SHUTDOWN_TIMEOUT``.
        """
        self.drain(time.monotonic() + (self.shutdown_timeout if timeout is None else timeout))

    def drain(self, deadline: float) -> None:
        if self._pid != os.getpid():
            return  # a forked child that never ran jobs: the queue is the parent's
        jobs = self._queue
        with jobs.all_tasks_done:
            while jobs.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                jobs.all_tasks_done.wait(remaining)
        with self._lock:
            self._closed = True
            left: list[_Item] = []
            while True:
                try:
                    left.append(jobs.get_nowait())
                except queue.Empty:
                    break
                jobs.task_done()
            running = list(self._running.values())
        self.abandon(left, running)

    def abandon(self, left: list[_Item], running: list[_Item]) -> None:
        """Log the jobs given up on at shutdown and mark their records, in one statement.

        A job that finishes while this runs keeps its own record: only records
        still ``queued`` or ``running`` are marked failed.
        """
        if not (left or running):
            return
        error = (
            f"Not finished: {{state}} when the process exited ({host_name()}, "
            f"RPCENABLE_BACKGROUND_SHUTDOWN_TIMEOUT = {self.shutdown_timeout:g} s)"
        )
        for what, items in (("was not run", left), ("was interrupted", running)):
            for _app, spec, _handle in items:
                log.error(
                    "Background job %s (%s) %s: the process is exiting "
                    "(RPCENABLE_BACKGROUND_SHUTDOWN_TIMEOUT = %g s). Arguments: %s",
                    spec.id, spec.name, what, self.shutdown_timeout, spec.summary,
                )
        app = (left or running)[0][0]
        try:
            with app.app_context():
                self.background.records.abandon(
                    [spec.id for _app, spec, _handle in left],
                    [spec.id for _app, spec, _handle in running],
                    error,
                )
        except Exception:
            log.warning("Could not record the abandoned background jobs", exc_info=True)
        for _app, _spec, handle in [*left, *running]:
            if not handle.done():
                state = "still running" if handle.status == RUNNING else "still queued"
                handle.finish(Outcome(ok=False, error_text=error.format(state=state)))


class SyncBackend:
    """Runs each job at once in the caller's thread (tests, scripts, debugging).

    The job still gets its own app context, record and error mail; its
    exception is not raised to the caller (``handle.result()`` raises it).
    """

    name = "sync"

    def __init__(self, background: Background) -> None:
        self.background = background
        self.throttle = MemoryThrottle()
        self._swept_pid: int | None = None

    def submit(self, app: Flask, spec: JobSpec) -> LocalJobHandle:
        if self._swept_pid != os.getpid():
            self._swept_pid = os.getpid()
            sweep_dead_processes(self.background, app)
        handle = LocalJobHandle(spec)
        handle.set_running()
        handle.finish(self.background.run_attempts(app, spec))
        return handle

    def shutdown(self, timeout: float | None = None) -> None:
        """Nothing to stop."""


def sweep_dead_processes(background: Background, app: Flask) -> None:
    """Mark failed the in-process jobs that dead processes of this host left unfinished."""
    try:
        with app.app_context():
            background.records.sweep_dead(IN_PROCESS_BACKENDS)
    except Exception:
        log.warning("Looking for jobs of dead processes failed", exc_info=True)


def _drain_all() -> None:
    """At interpreter exit: drain every pool of this process, in parallel."""
    with _pools_lock:
        pools = list(_pools)
    start = time.monotonic()
    for pool in pools:
        try:
            pool.drain(start + pool.shutdown_timeout)
        except Exception:
            log.exception("Draining background jobs at exit failed")


def _after_fork_in_child() -> None:
    # Only this thread exists in the child: the locks may have been held by others.
    global _pools_lock
    _pools_lock = threading.Lock()
    for pool in list(_pools):
        pool._reset()


atexit.register(_drain_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
