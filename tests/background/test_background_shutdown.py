"""Issue 15 item 2: leftovers at shutdown, finished jobs, records of dead processes."""

from __future__ import annotations

import datetime
import socket
import subprocess
import sys
from typing import Any

import background_helpers as jobs
import sqlalchemy as sa

from flask_rpcenable.background.core import get_background
from flask_rpcenable.bookkeeping import bookkeeping_engine


def _app(tmp_path: Any) -> Any:
    app = jobs.create_app(
        instance_path=str(tmp_path / "instance"),
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'jobs.sqlite'}",
    )
    with app.app_context():
        jobs.rpc.state(app).db.create_all()
    return app


def test_leftovers_are_marked_in_one_statement_and_finished_jobs_stay_finished(
    tmp_path: Any,
) -> None:
    app = _app(tmp_path)
    records = get_background(app).records
    with app.app_context():
        for i in range(200):
            records.create(f"job{i}", "x.y", "", "thread")
            if i >= 100:
                records.update(f"job{i}", "x.y", state="running")
        records.update("job0", "x.y", state="succeeded")  # finished during the drain
        statements: list[str] = []
        engine = bookkeeping_engine(records.db)
        listener = lambda *a: statements.append(a[2])  # noqa: E731
        sa.event.listen(engine, "before_cursor_execute", listener)
        try:
            changed = records.abandon(
                [f"job{i}" for i in range(100)], [f"job{i}" for i in range(100, 200)],
                "Not finished: {state} when the process exited",
            )
        finally:
            sa.event.remove(engine, "before_cursor_execute", listener)
        table = records.model.__table__
        with engine.connect() as conn:
            states = dict(conn.execute(sa.select(table.c.job_id, table.c.state)).all())
            errors = dict(conn.execute(sa.select(table.c.job_id, table.c.error)).all())
    assert len(statements) == 1, statements
    assert changed == 199
    assert states["job0"] == "succeeded"
    assert {states[f"job{i}"] for i in range(1, 200)} == {"failed"}
    assert "still queued" in errors["job5"] and "still running" in errors["job150"]


def test_records_of_dead_processes_are_marked_at_start(tmp_path: Any) -> None:
    app = _app(tmp_path)
    records = get_background(app).records
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    here = socket.gethostname()
    with app.app_context():
        table = records.model.__table__
        for job_id, host, state in [
            ("a", f"{here} (pid {dead})", "queued"),
            ("b", f"{here} (pid {dead})", "running"),
            ("c", f"{here} (pid 1)", "running"),  # alive
            ("d", f"elsewhere (pid {dead})", "running"),  # another host
        ]:
            records.create(job_id, "x.y", "", "thread")
            records.update(job_id, "x.y", state=state, host=host)
        jobs.whoami().result(timeout=10)  # the pool's first job sweeps first
        with bookkeeping_engine(records.db).connect() as conn:
            rows = {r.job_id: r for r in conn.execute(sa.select(table))}
    assert rows["a"].state == rows["b"].state == "failed"
    assert "Lost" in rows["a"].error
    assert rows["c"].state == "running" and rows["d"].state == "running"


def _states(app: Any) -> dict[str, Any]:
    records = get_background(app).records
    with app.app_context(), bookkeeping_engine(records.db).connect() as conn:
        return {r.job_id: r for r in conn.execute(sa.select(records.model.__table__))}


def test_an_operator_fails_the_records_of_a_machine_gone_for_good(tmp_path: Any) -> None:
    app = _app(tmp_path)
    records = get_background(app).records
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)
    with app.app_context():
        for job_id, host, state, queued_at in [
            ("gone-run", "gone-box (pid 7)", "running", None),
            ("gone-queued", "gone-box (pid 8)", "queued", None),
            ("gone-done", "gone-box (pid 7)", "succeeded", None),
            ("like-named", "gone-box-2 (pid 7)", "running", None),
            ("old-elsewhere", "other-box (pid 9)", "running", long_ago),
            ("new-elsewhere", "other-box (pid 9)", "running", None),
        ]:
            records.create(job_id, "x.y", "", "thread")
            values = {"state": state, "host": host}
            if queued_at is not None:
                values["queued_at"] = queued_at
            records.update(job_id, "x.y", **values)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["rpc", "fail-lost-jobs", "--host", "gone-box"])
    assert result.exit_code == 0, result.output
    assert "Marked 2 background job record(s) as failed (host gone-box)" in result.output
    rows = _states(app)
    assert rows["gone-run"].state == rows["gone-queued"].state == "failed"
    assert "fail-lost-jobs" in rows["gone-run"].error and rows["gone-run"].finished_at
    assert rows["gone-done"].state == "succeeded"  # finished records keep their state
    assert rows["like-named"].state == "running"  # another machine whose name starts alike
    result = runner.invoke(args=["rpc", "fail-lost-jobs", "--older-than", "1"])
    assert result.exit_code == 0, result.output
    rows = _states(app)
    assert rows["old-elsewhere"].state == "failed"
    assert rows["new-elsewhere"].state == rows["like-named"].state == "running"


def test_fail_lost_jobs_needs_a_criterion_and_refuses_this_machine(tmp_path: Any) -> None:
    runner = _app(tmp_path).test_cli_runner()
    result = runner.invoke(args=["rpc", "fail-lost-jobs"])
    assert result.exit_code == 2 and "--host NAME, --older-than DAYS" in result.output
    result = runner.invoke(args=["rpc", "fail-lost-jobs", "--host", socket.gethostname()])
    assert result.exit_code == 2 and "is this machine" in result.output
