"""The @postpone decorator and its settings, and jobs running in process: the handle, retries,
the bounded pool and queue, the sync backend, shutdown, and a job scheduled from an RPC method."""

from __future__ import annotations

import threading
import xmlrpc.client
from collections.abc import Callable
from typing import Any

import background_helpers as jobs
import pytest
import sqlalchemy as sa
from background_helpers import record, records
from flask import Flask, current_app, has_request_context

from flask_rpcenable import RPCEnable
from flask_rpcenable.background import (
    BackgroundJobFailed,
    BackgroundQueueFull,
    PostponedFunction,
    postpone,
    shutdown,
)
from flask_rpcenable.background.core import get_background

# -- the decorator -------------------------------------------------------------


def test_decorator_bare_and_called_keeps_the_function() -> None:
    def plain(a: int) -> int:
        """Doc."""
        return a

    bare = postpone(plain)
    called = postpone(retries=2)(plain)
    assert isinstance(bare, PostponedFunction)
    assert bare.func is plain and bare.__doc__ == "Doc." and bare.__name__ == "plain"
    assert bare.retries is None and called.retries == 2
    assert bare.job_name.endswith(
        "test_decorator_bare_and_called_keeps_the_function.<locals>.plain"
    )


def test_public_entry_points(bg_app: Callable[..., Flask]) -> None:
    import flask_rpcenable

    assert flask_rpcenable.postpone is postpone
    rpc = RPCEnable()

    def double(x: int) -> int:
        return 2 * x

    bare = rpc.postpone(double)
    called = rpc.postpone(retries=1)(double)
    assert isinstance(bare, PostponedFunction) and called.retries == 1
    app = bg_app(RPCENABLE_BACKGROUND="sync")
    with app.app_context():
        assert bare(21).result(0) == 42


def test_decorator_refuses_async_functions_and_bad_retries() -> None:
    async def coroutine() -> None:
        return None

    with pytest.raises(TypeError, match="not async"):
        postpone(coroutine)
    with pytest.raises(ValueError, match="retries"):
        postpone(retries=-1)(lambda: None)


def test_calling_outside_an_app_context_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="needs an app context"):
        jobs.whoami()


def test_calling_on_an_app_without_rpcenable_is_a_clear_error() -> None:
    with Flask("bare").app_context(), pytest.raises(RuntimeError, match="rpc.init_app"):
        jobs.whoami()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("RPCENABLE_BACKGROUND", "celery"),
        ("RPCENABLE_BACKGROUND_WORKERS", 0),
        ("RPCENABLE_BACKGROUND_QUEUE_SIZE", "10"),
        ("RPCENABLE_BACKGROUND_SHUTDOWN_TIMEOUT", -1),
        ("RPCENABLE_BACKGROUND_RETRIES", True),
        ("RPCENABLE_ADMINS", [42]),
        ("RPCENABLE_RQ_QUEUE", ""),
    ],
)
def test_bad_settings_are_refused_at_init(
    make_app: Callable[..., Flask], key: str, value: Any
) -> None:
    with pytest.raises(RuntimeError, match=key):
        RPCEnable(make_app(**{key: value}))


# -- running -------------------------------------------------------------------


def test_job_runs_in_the_scheduling_app_and_returns_a_handle(bg_app: Callable[..., Flask]) -> None:
    one = bg_app(MARK="one")
    two = bg_app(MARK="two")
    with one.app_context():
        first = jobs.whoami()
    with two.app_context():
        second = jobs.whoami()
    assert len(first.id) == 32 and first.id != second.id
    assert first.result(timeout=10) == "bgtestapp:one"
    assert second.result(timeout=10) == "bgtestapp:two"
    assert first.status == "succeeded" and first.done()


def test_schedule_on_an_explicit_app(bg_app: Callable[..., Flask]) -> None:
    app = bg_app(MARK="explicit")
    assert jobs.whoami.schedule(app).result(timeout=10) == "bgtestapp:explicit"


def test_retries_run_the_job_again_and_only_the_last_failure_counts(
    bg_app: Callable[..., Flask], tmp_path: Any
) -> None:
    app = bg_app()
    counter = str(tmp_path / "flaky.txt")
    with app.app_context():
        handle = jobs.flaky(counter)
        never = postpone(retries=2)(jobs.fail.func)("always")
    assert handle.result(timeout=10) == 2
    row = record(app, handle.id)
    assert row.state == "succeeded" and row.attempts == 2
    with pytest.raises(BackgroundJobFailed):
        never.result(timeout=10)
    assert record(app, never.id).attempts == 3


def test_global_retries_setting(bg_app: Callable[..., Flask], tmp_path: Any) -> None:
    app = bg_app(RPCENABLE_BACKGROUND_RETRIES=1)
    with app.app_context():
        handle = jobs.fail("x")
    with pytest.raises(BackgroundJobFailed):
        handle.result(timeout=10)
    assert record(app, handle.id).attempts == 2


def test_db_session_of_the_job_is_removed(bg_app: Callable[..., Flask]) -> None:
    app = bg_app()
    db = jobs.rpc.state(app).db

    class Note(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "bg_test_note"
        id = sa.Column(sa.Integer, primary_key=True)
        text = sa.Column(sa.String(50))

    with app.app_context():
        db.create_all()
    sessions: list[Any] = []

    def work(keep: str, drop: str) -> None:
        db.session.add(Note(text=keep))
        db.session.commit()
        db.session.add(Note(text=drop))
        db.session.flush()  # written, never committed
        sessions.append(db.session())

    with app.app_context():
        handle = postpone(work)("kept", "dropped")
    handle.result(timeout=10)
    assert not sessions[0].in_transaction()
    with app.app_context():
        texts = db.session.scalars(sa.select(Note.text)).all()
        db.session.add(Note(text="writable"))  # no lock left behind
        db.session.commit()
    assert texts == ["kept"]
    assert record(app, handle.id).state == "succeeded"


def test_full_queue_raises_and_leaves_a_failed_record(bg_app: Callable[..., Flask]) -> None:
    app = bg_app(RPCENABLE_BACKGROUND_WORKERS=1, RPCENABLE_BACKGROUND_QUEUE_SIZE=1)
    jobs.events["release-q"] = threading.Event()
    jobs.events["started-q"] = threading.Event()
    with app.app_context():
        running = jobs.wait_for("release-q", started="started-q")
        assert jobs.events["started-q"].wait(10)
        waiting = jobs.whoami()  # fills the queue (size 1)
        with pytest.raises(BackgroundQueueFull, match="RPCENABLE_BACKGROUND_QUEUE_SIZE"):
            jobs.whoami()
    rejected = [r for r in records(app) if r.job_id not in (running.id, waiting.id)]
    assert len(rejected) == 1
    assert rejected[0].state == "failed" and rejected[0].error.startswith("Not scheduled")
    jobs.events["release-q"].set()
    assert running.result(timeout=10) == "release-q"
    assert waiting.result(timeout=10) == "bgtestapp:None"


def test_pool_is_bounded_by_workers(bg_app: Callable[..., Flask]) -> None:
    app = bg_app(RPCENABLE_BACKGROUND_WORKERS=2)
    names = [f"b{i}" for i in range(4)]
    for name in names:
        jobs.events[name] = threading.Event()
        jobs.events[name + "-started"] = threading.Event()
    with app.app_context():
        handles = [jobs.wait_for(n, started=n + "-started") for n in names]
    assert jobs.events["b0-started"].wait(10) and jobs.events["b1-started"].wait(10)
    pool = get_background(app).backend
    assert len(pool._threads) == 2
    assert [h.status for h in handles[2:]] == ["queued", "queued"]
    for name in names:
        jobs.events[name].set()
    assert [h.result(timeout=10) for h in handles] == names


def test_shutdown_refuses_new_jobs(bg_app: Callable[..., Flask]) -> None:
    app = bg_app()
    shutdown(app, timeout=5)
    with app.app_context(), pytest.raises(RuntimeError, match="shut down"):
        jobs.whoami()


def test_sync_backend_runs_at_once_and_reports(bg_app: Callable[..., Flask]) -> None:
    app = bg_app(RPCENABLE_BACKGROUND="sync", MARK="s")
    with app.app_context():
        ok = jobs.whoami()
        assert ok.done() and ok.result(0) == "bgtestapp:s"
        bad = jobs.fail("sync failure")  # not raised here
    assert bad.status == "failed"
    with pytest.raises(BackgroundJobFailed):
        bad.result(0)
    assert record(app, bad.id).backend == "sync"


def test_result_timeout(bg_app: Callable[..., Flask]) -> None:
    app = bg_app()
    jobs.events["release-t"] = threading.Event()
    with app.app_context():
        handle = jobs.wait_for("release-t")
    with pytest.raises(TimeoutError, match="did not finish"):
        handle.result(timeout=0.01)
    jobs.events["release-t"].set()
    assert handle.result(timeout=10) == "release-t"


def test_wrong_arguments_fail_in_the_caller(bg_app: Callable[..., Flask]) -> None:
    app = bg_app()
    with (
        app.app_context(),
        pytest.raises(TypeError, match="background_helpers.fail: .*password"),
    ):
        jobs.fail("x", password="never stored")
    assert records(app) == []


# -- from an RPC method ----------------------------------------------------------


seen: list[tuple[str, bool]] = []


@postpone
def remember() -> None:
    seen.append((current_app.name, has_request_context()))


def test_postpone_from_an_rpc_method(
    make_app: Callable[..., Flask], serve: Callable[[Flask], Any]
) -> None:
    rpc = RPCEnable()
    handles: dict[str, Any] = {}

    @rpc.register
    def start() -> str:
        handle = remember()
        handles[handle.id] = handle
        return handle.id

    app = make_app()
    rpc.init_app(app)
    with app.app_context():
        rpc.state(app).db.create_all()
    try:
        server = serve(app)
        job_id = xmlrpc.client.ServerProxy(server.url + "/rpc/").start()
        handles[job_id].result(timeout=10)
        assert seen[-1] == ("testapp", False)  # the app context, no request
    finally:
        shutdown(app, timeout=5)
