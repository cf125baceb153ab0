"""Background jobs at process exit and fork, in subprocesses: queued jobs run before the
interpreter exits, jobs left past the timeout are logged and recorded, a forked child gets a
fresh pool."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import background_helpers as jobs
from background_helpers import records


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
