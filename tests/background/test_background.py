"""Background jobs in process: @postpone, the thread pool, records, exit and fork."""

from __future__ import annotations

import base64
import datetime
import logging
import os
import subprocess
import sys
import textwrap
import threading
import xmlrpc.client
from collections.abc import Callable, Iterator
from typing import Any

import background_helpers as jobs
import pytest
import sqlalchemy as sa
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


@pytest.fixture
def bg_app(tmp_path: Any) -> Iterator[Callable[..., Flask]]:
    """Build apps with tables created; their pools are stopped after the test."""
    apps: list[Flask] = []

    def factory(create_tables: bool = True, **config: Any) -> Flask:
        index = len(apps)
        config.setdefault("SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / f'bg{index}.sqlite'}")
        config.setdefault("TESTING", True)
        app = jobs.create_app(instance_path=str(tmp_path / f"instance{index}"), **config)
        with app.app_context():
            db = jobs.rpc.state(app).db
            if create_tables:
                db.create_all()
            else:  # the embedded database made its tables at start: take them away
                db.drop_all()
        apps.append(app)
        return app

    yield factory
    for app in apps:
        shutdown(app, timeout=5)


def records(app: Flask) -> list[Any]:
    state = jobs.rpc.state(app)
    model = state.models.BackgroundJob
    with app.app_context():
        rows = state.db.session.scalars(sa.select(model).order_by(model.id)).all()
        state.db.session.expunge_all()
        return list(rows)


def record(app: Flask, job_id: str) -> Any:
    return next(r for r in records(app) if r.job_id == job_id)


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


def test_model_is_defined_once_per_db(bg_app: Callable[..., Flask]) -> None:
    app = bg_app()
    state = jobs.rpc.state(app)
    second = RPCEnable(name="internal", url_prefix="/internal")
    second.init_app(app)
    assert second.state(app).models.BackgroundJob is state.models.BackgroundJob
    assert state.models.BackgroundJob.__tablename__ == "rpcenable_background_job"


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


def test_record_goes_through_the_states(bg_app: Callable[..., Flask]) -> None:
    app = bg_app()
    jobs.events["release-1"] = threading.Event()
    jobs.events["started-1"] = threading.Event()
    with app.app_context():
        handle = jobs.wait_for("release-1", started="started-1")
    row = record(app, handle.id)
    assert row.state in ("queued", "running")
    assert jobs.events["started-1"].wait(10)
    assert record(app, handle.id).state == "running"
    assert handle.status == "running"
    jobs.events["release-1"].set()
    assert handle.result(timeout=10) == "release-1"
    row = record(app, handle.id)
    assert row.state == "succeeded"
    assert row.name == "background_helpers.wait_for"
    assert row.arguments == "name='release-1', started='started-1'"
    assert row.backend == "thread" and row.attempts == 1
    assert row.started_at is not None and row.finished_at is not None
    assert row.duration_ms >= 0 and row.error is None and row.traceback is None
    assert row.host and str(os.getpid()) in row.host


def test_failure_is_recorded_with_traceback_and_redacted_arguments(
    bg_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = bg_app()
    with app.app_context():
        handle = jobs.fail("it broke", api_token="tok-123-secret", note="visible")
    with pytest.raises(BackgroundJobFailed, match="RuntimeError: it broke") as info:
        handle.result(timeout=10)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "Traceback" in info.value.traceback
    row = record(app, handle.id)
    assert row.state == "failed"
    assert row.error == "RuntimeError: it broke"
    assert "Traceback (most recent call last)" in row.traceback
    assert "raise RuntimeError(message)" in row.traceback
    assert "api_token=***" in row.arguments and "note='visible'" in row.arguments
    assert "tok-123-secret" not in row.arguments
    failures = [r for r in caplog.records if "failed (attempt 1 of 1)" in r.getMessage()]
    assert failures and failures[0].levelno == logging.ERROR


def test_secret_dict_keys_are_redacted_and_long_values_cut(bg_app: Callable[..., Flask]) -> None:
    app = bg_app(RPCENABLE_BACKGROUND="sync")
    with app.app_context():
        handle = jobs.append_line.schedule(app, os.devnull, "x" * 5000, delay=0.0)
        nested = jobs.fail({"user": "bob", "Password": "hunter2"}, note=["a"] * 100)
    assert len(record(app, handle.id).arguments) < 400
    text = record(app, nested.id).arguments
    assert "'Password': ***" in text and "hunter2" not in text and "'user': 'bob'" in text
    assert "..." in text


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


def test_record_failures_never_stop_the_worker(
    bg_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    app = bg_app(create_tables=False)  # no table: every record write fails
    path = str(tmp_path / "lines.txt")
    with app.app_context():
        handles = [jobs.append_line(path, str(i)) for i in range(3)]
    assert [h.result(timeout=10) for h in handles] == ["0", "1", "2"]
    with open(path, encoding="utf-8") as handle:
        assert sorted(handle.read().split()) == ["0", "1", "2"]
    missing = [r for r in caplog.records if "does not exist" in r.getMessage()]
    assert len(missing) == 1  # one line naming `flask rpc init-db`, not one per write
    assert "flask rpc init-db" in missing[0].getMessage()


def test_records_can_be_switched_off(bg_app: Callable[..., Flask]) -> None:
    app = bg_app(RPCENABLE_BACKGROUND_RECORDS=False)
    with app.app_context():
        assert jobs.whoami().result(timeout=10) == "bgtestapp:None"
    assert records(app) == []


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


# -- process exit and fork (subprocesses) -----------------------------------------


def run_script(script: str, tmp_path: Any, **env: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = jobs.TESTS_DIR + os.pathsep + environment.get("PYTHONPATH", "")
    environment["BGTEST_SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'sub.sqlite'}"
    environment["BGTEST_INSTANCE"] = str(tmp_path / "instance")
    environment.update(env)
    preamble = "import logging, os, sys\nlogging.basicConfig(level=logging.INFO)\n"
    preamble += "import background_helpers as jobs\n"
    return subprocess.run(
        [sys.executable, "-c", preamble + textwrap.dedent(script)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_queued_jobs_run_before_the_interpreter_exits(tmp_path: Any) -> None:
    path = tmp_path / "drain.txt"
    result = run_script(
        f"""
        app = jobs.create_app()
        with app.app_context():
            jobs.rpc.state(app).db.create_all()
            for i in range(30):
                jobs.append_line({str(path)!r}, str(i), delay=0.01)
        print("scheduled")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "scheduled"
    assert sorted(int(x) for x in path.read_text().split()) == list(range(30))


def test_jobs_that_cannot_run_by_the_timeout_are_logged_and_recorded(tmp_path: Any) -> None:
    path = tmp_path / "never.txt"
    result = run_script(
        f"""
        app = jobs.create_app(RPCENABLE_BACKGROUND_WORKERS=1,
                              RPCENABLE_BACKGROUND_SHUTDOWN_TIMEOUT=0.3)
        with app.app_context():
            jobs.rpc.state(app).db.create_all()
            ids = [jobs.sleep_forever().id]
            ids += [jobs.append_line({str(path)!r}, str(i)).id for i in range(3)]
        print(" ".join(ids))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    ids = result.stdout.split()
    assert len(ids) == 4
    assert not path.exists()  # the queued ones never ran
    for job_id in ids:
        lines = [line for line in result.stderr.splitlines() if job_id in line]
        assert any("was not run" in line or "was interrupted" in line for line in lines), job_id
    assert result.stderr.count("was not run") >= 3
    app = jobs.create_app(
        instance_path=str(tmp_path / "instance"),
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'sub.sqlite'}",
    )
    rows = {r.job_id: r for r in records(app)}
    assert {rows[i].state for i in ids} == {"failed"}
    assert all("process exited" in rows[i].error for i in ids)


def test_forked_child_gets_a_fresh_pool(tmp_path: Any) -> None:
    """gunicorn --preload: a pool started before fork starts again in the child."""
    path = tmp_path / "fork.txt"
    release = tmp_path / "release"
    started = tmp_path / "started"
    result = run_script(
        f"""
        import time
        app = jobs.create_app(RPCENABLE_BACKGROUND_WORKERS=1, RPCENABLE_BACKGROUND_RECORDS=False)
        with app.app_context():
            jobs.append_line({str(path)!r}, "parent-before").result(10)
            blocker = jobs.wait_for_file({str(release)!r}, {str(started)!r})
            while not os.path.exists({str(started)!r}):
                time.sleep(0.01)
            queued = jobs.append_line({str(path)!r}, "parent-queued")
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                with app.app_context():
                    code = 0 if jobs.append_line({str(path)!r}, "child").result(10) else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        open({str(release)!r}, "w").close()
        blocker.result(10)
        queued.result(10)
        print("child", os.waitstatus_to_exitcode(status))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "child 0"
    lines = path.read_text().split()
    assert sorted(lines) == ["child", "parent-before", "parent-queued"]


def test_wrong_arguments_fail_in_the_caller(bg_app: Callable[..., Flask]) -> None:
    app = bg_app()
    with (
        app.app_context(),
        pytest.raises(TypeError, match="background_helpers.fail: .*password"),
    ):
        jobs.fail("x", password="never stored")
    assert records(app) == []


# -- admin ------------------------------------------------------------------------


def test_admin_lists_jobs_read_only(bg_app: Callable[..., Flask]) -> None:
    app = bg_app(
        RPCENABLE_BACKGROUND="sync",
        RPCENABLE_ADMIN_USERNAME="admin",
        RPCENABLE_ADMIN_PASSWORD="admin-password",
    )
    with app.app_context():
        failed = jobs.fail("shown in the admin", api_token="hidden-token")
    client = app.test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:admin-password").decode()}
    assert client.get("/admin/background-jobs/").status_code == 401
    page = client.get("/admin/background-jobs/", headers=auth)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "background_helpers.fail" in html and "RuntimeError: shown in the admin" in html
    assert "hidden-token" not in html
    row = record(app, failed.id)
    details = client.get(f"/admin/background-jobs/details/?id={row.id}", headers=auth)
    assert details.status_code == 200
    assert "Traceback (most recent call last)" in details.get_data(as_text=True)
    assert client.get("/admin/background-jobs/new/", headers=auth).status_code != 200
    assert client.get(f"/admin/background-jobs/edit/?id={row.id}", headers=auth).status_code != 200
    deleted = client.post("/admin/background-jobs/delete/", data={"id": row.id}, headers=auth)
    assert deleted.status_code != 200
    assert record(app, failed.id).state == "failed"  # still there


# -- retention ----------------------------------------------------------------------


def _age(app: Flask, job_id: str, days: float) -> None:
    state = jobs.rpc.state(app)
    table = state.models.BackgroundJob.__table__
    with app.app_context(), state.db.engine.begin() as connection:
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)
        connection.execute(table.update().where(table.c.job_id == job_id).values(queued_at=old))


def test_old_records_are_pruned_when_jobs_are_queued(bg_app: Callable[..., Flask]) -> None:
    app = bg_app(RPCENABLE_BACKGROUND="sync", RPCENABLE_BACKGROUND_RETENTION_DAYS=7)
    with app.app_context():
        old = jobs.whoami()
    _age(app, old.id, 8)
    get_background(app).records.prune_gate.reset()  # as in a fresh process
    with app.app_context():
        new = jobs.whoami()
    assert [r.job_id for r in records(app)] == [new.id]


def test_prune_jobs_command(bg_app: Callable[..., Flask]) -> None:
    app = bg_app(RPCENABLE_BACKGROUND="sync", RPCENABLE_BACKGROUND_RETENTION_DAYS=None)
    with app.app_context():
        handles = [jobs.whoami() for _ in range(3)]
    _age(app, handles[0].id, 40)
    _age(app, handles[1].id, 10)
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["rpc", "prune-jobs"])
    assert refused.exit_code != 0 and "--older-than" in refused.output
    result = runner.invoke(args=["rpc", "prune-jobs", "--older-than", "30"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 background job record(s)" in result.output
    assert sorted(r.job_id for r in records(app)) == sorted(h.id for h in handles[1:])
