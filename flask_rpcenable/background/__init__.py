"""Background jobs: :func:`postpone` and the component that runs them.

::

    from flask_rpcenable import postpone

    @postpone
    def rebuild_index(owner_id: int) -> None:
        ...

    job = rebuild_index(42)      # returns at once, inside any app context
    job.id, job.status           # the job record's id, "queued"/"running"/...
    job.result(timeout=10)       # waits (where the backend can tell)

The function runs later inside an app context of the app that scheduled it,
with ``db.session`` removed afterwards. Where it runs is the
``RPCENABLE_BACKGROUND`` setting: ``"thread"`` (a bounded pool in this
process, the default), ``"rq"`` (RQ workers on Redis, started with
``flask rpc worker``) or ``"sync"`` (at once, in the caller's thread). A
failure is logged, recorded as a ``BackgroundJob`` row and mailed to
``RPCENABLE_ADMINS``. See ``docs/background.rst``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from flask import Flask, current_app, has_app_context

from ..cli import rpc_cli
from .cli import fail_lost_jobs_command, prune_jobs_command, worker_command
from .core import (
    Backend,
    Background,
    BackgroundJobFailed,
    BackgroundQueueFull,
    JobHandle,
    get_background,
)
from .records import RecordWriter, define_background_job_model
from .settings import DEFAULTS, BackgroundSettings
from .thread import SyncBackend, ThreadBackend

if TYPE_CHECKING:
    from ..state import RPCState

R = TypeVar("R")

__all__ = [
    "DEFAULTS",
    "BackgroundJobFailed",
    "BackgroundQueueFull",
    "JobHandle",
    "PostponedFunction",
    "init_app",
    "postpone",
    "shutdown",
]


class PostponedFunction(Generic[R]):
    """A function whose calls run in the background; made by :func:`postpone`.

    Calling it schedules the call and returns a job handle at once. The
    original function stays reachable as :attr:`func` (to call it directly,
    in tests for example).
    """

    def __init__(self, func: Callable[..., R], *, retries: int | None = None) -> None:
        if inspect.iscoroutinefunction(func):
            raise TypeError(
                f"@postpone takes plain functions, not async ones ({func.__qualname__})"
            )
        if retries is not None and (
            isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
        ):
            raise ValueError(f"retries must be an integer of at least 0, got {retries!r}")
        functools.update_wrapper(self, func)
        #: The undecorated function.
        self.func = func
        #: Retries after a failure; ``None`` uses ``RPCENABLE_BACKGROUND_RETRIES``.
        self.retries = retries
        #: ``module.qualname``, shown in records and mail.
        self.job_name = f"{func.__module__}.{func.__qualname__}"
        #: ``module:qualname``, what a worker imports (RQ backend).
        self.target = f"{func.__module__}:{func.__qualname__}"

    def __call__(self, *args: Any, **kwargs: Any) -> JobHandle:
        """Schedule a call with these arguments; return its job handle at once.

        :raises RuntimeError: outside an app context, or when flask-rpcenable
            is not set up on the current app.
        :raises BackgroundQueueFull: when the in-process queue is full.
        """
        if not has_app_context():
            raise RuntimeError(
                f"Calling the postponed function {self.job_name} needs an app context: call it "
                "from a request, an RPC method or a CLI command, or inside "
                "'with app.app_context():'. The job runs in that app."
            )
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        return self._submit(app, args, kwargs)

    def schedule(self, app: Flask, *args: Any, **kwargs: Any) -> JobHandle:
        """Schedule a call on ``app`` explicitly, from outside its app context too."""
        if has_app_context() and current_app._get_current_object() is app:  # type: ignore[attr-defined]
            return self._submit(app, args, kwargs)
        with app.app_context():
            return self._submit(app, args, kwargs)

    def _submit(self, app: Flask, args: tuple[Any, ...], kwargs: dict[str, Any]) -> JobHandle:
        background = get_background(app)
        spec = background.make_spec(
            self.func, self.job_name, self.target, args, kwargs, self.retries
        )
        return background.submit(app, spec)

    def __repr__(self) -> str:
        return f"<postponed {self.job_name}>"


@overload
def postpone(func: Callable[..., R], /) -> PostponedFunction[R]: ...


@overload
def postpone(
    func: None = None, /, *, retries: int | None = None
) -> Callable[[Callable[..., R]], PostponedFunction[R]]: ...


def postpone(func: Callable[..., Any] | None = None, /, *, retries: int | None = None) -> Any:
    """Run a function's calls in the background; bare (``@postpone``) or called.

    Calling the decorated function returns a job handle at once (``.id``,
    ``.status``, ``.result(timeout)``); the function runs later inside an app
    context of the app that scheduled it. With the RQ backend the function
    must be importable: defined at module level, outside ``__main__``, and its
    arguments picklable.

    :param retries: retries after a failure; defaults to
        ``RPCENABLE_BACKGROUND_RETRIES``. Only the last failure is mailed.
    """

    def decorator(f: Callable[..., Any]) -> PostponedFunction[Any]:
        return PostponedFunction(f, retries=retries)

    return decorator if func is None else decorator(func)


def shutdown(app: Flask, timeout: float | None = None) -> None:
    """Run the jobs queued in this process for ``app`` for up to ``timeout`` seconds.

    Afterwards the in-process pool refuses new jobs; jobs still queued are
    logged and recorded as failed. This happens by itself at interpreter exit
    (with ``RPCENABLE_BACKGROUND_SHUTDOWN_TIMEOUT``); call it to stop earlier.
    The RQ and sync backends have nothing to stop.
    """
    get_background(app).backend.shutdown(timeout)


def init_app(app: Flask, state: RPCState) -> None:
    """Set the defaults, define the ``BackgroundJob`` model, set up the backend."""
    settings = BackgroundSettings.from_app(app)
    model = define_background_job_model(state.db)
    state.models.BackgroundJob = model
    if not state.primary:
        return  # the app's first RPCEnable runs its jobs
    state.background = Background(
        settings=settings,
        state=state,
        records=RecordWriter(
            state.db, model, enabled=settings.records, retention_days=settings.retention_days
        ),
        make_backend=make_backend,
    )
    rpc_cli.add_command(worker_command)
    rpc_cli.add_command(prune_jobs_command)
    rpc_cli.add_command(fail_lost_jobs_command)


def make_backend(background: Background) -> Backend:
    """The backend ``RPCENABLE_BACKGROUND`` names.

    The RQ backend is imported only when chosen: ``rq`` and ``redis`` are an
    optional dependency (``flask-rpcenable[rq]``).
    """
    kind = background.settings.backend
    if kind == "rq":
        try:
            from .rq_backend import RQBackend
        except ImportError as exc:
            raise RuntimeError(
                "RPCENABLE_BACKGROUND = 'rq' needs the rq and redis packages: "
                "pip install 'flask-rpcenable[rq]'"
            ) from exc
        return RQBackend(background)
    if kind == "sync":
        return SyncBackend(background)
    return ThreadBackend(background)
