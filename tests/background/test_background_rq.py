"""The RQ backend against a real redis-server and a real ``flask rpc worker`` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import background_helpers as jobs
import pytest
import sqlalchemy as sa
from flask import Flask
from live import env_or_skip

from flask_rpcenable.background import BackgroundJobFailed, postpone
from flask_rpcenable.background.core import get_background


@pytest.fixture
def redis_url() -> str:
    return env_or_skip("RPCENABLE_TEST_REDIS_URL")


@pytest.fixture
def smtp() -> Iterator[tuple[jobs.MailSink, int]]:
    yield from jobs.smtp_server()


@pytest.fixture
def rq_env(
    redis_url: str, tmp_path: Any, smtp: tuple[jobs.MailSink, int]
) -> Iterator[dict[str, Any]]:
    """Config shared by the test process and its worker; a queue of its own."""
    queue = f"rpcenable-test-{uuid.uuid4().hex}"
    config: dict[str, Any] = {
        "RPCENABLE_BACKGROUND": "rq",
        "RPCENABLE_RQ_URL": redis_url,
        "RPCENABLE_RQ_QUEUE": queue,
        "RPCENABLE_RQ_JOB_TIMEOUT": 30,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'rq.sqlite'}",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp[1],
        "MAIL_DEFAULT_SENDER": "worker@example.com",
        "RPCENABLE_ADMINS": ["ops@example.com"],
    }
    yield config
    from redis import Redis

    connection = Redis.from_url(redis_url)
    keys = list(connection.scan_iter(f"*{queue}*"))
    if keys:
        connection.delete(*keys)


@pytest.fixture
def rq_app(rq_env: dict[str, Any], tmp_path: Any) -> Flask:
    app = jobs.create_app(instance_path=str(tmp_path / "instance"), **rq_env)
    with app.app_context():
        jobs.rpc.state(app).db.create_all()
    return app


def run_worker(
    config: dict[str, Any], tmp_path: Any, *args: str
) -> subprocess.CompletedProcess[str]:
    """``flask rpc worker --burst`` in a subprocess with the same config."""
    env = dict(os.environ)
    env["PYTHONPATH"] = jobs.TESTS_DIR + os.pathsep + env.get("PYTHONPATH", "")
    env["BGTEST_INSTANCE"] = str(tmp_path / "instance")
    for key, value in config.items():
        env[f"BGTEST_{key}"] = value if isinstance(value, str) else json.dumps(value)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", jobs.APP_SPEC, "rpc", "worker", "--burst", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rows(app: Flask) -> dict[str, Any]:
    state = jobs.rpc.state(app)
    model = state.models.BackgroundJob
    with app.app_context():
        result = {r.job_id: r for r in state.db.session.scalars(sa.select(model))}
        state.db.session.expunge_all()
        return result


def test_worker_runs_jobs_records_them_and_mails_failures(
    rq_app: Flask,
    rq_env: dict[str, Any],
    smtp: tuple[jobs.MailSink, int],
    tmp_path: Any,
) -> None:
    sink, _ = smtp
    path = str(tmp_path / "lines.txt")
    counter = str(tmp_path / "flaky.txt")
    with rq_app.app_context():
        ok = jobs.append_line(path, "from rq")
        who = jobs.whoami()
        bad = jobs.fail("rq failure", api_token="sk-secret-token-42")
        bad_again = jobs.fail("rq failure, held back")
        retried = jobs.flaky(counter)
        killed = jobs.die()
    assert ok.status == "queued" and not ok.done()
    assert rows(rq_app)[ok.id].state == "queued"

    result = run_worker(rq_env, tmp_path)
    assert result.returncode == 0, result.stderr

    assert ok.result(timeout=10) == "from rq"
    assert who.result(timeout=10) == "bgtestapp:None"  # ran inside the worker's app
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == "from rq\n"
    assert retried.result(timeout=10) == 2
    with pytest.raises(BackgroundJobFailed, match="rq failure") as info:
        bad.result(timeout=10)
    assert "RuntimeError: rq failure" in info.value.traceback
    with pytest.raises(BackgroundJobFailed):
        killed.result(timeout=10)

    records = rows(rq_app)
    assert records[ok.id].state == "succeeded" and records[ok.id].backend == "rq"
    assert records[ok.id].host and "pid" in records[ok.id].host
    assert records[retried.id].state == "succeeded" and records[retried.id].attempts == 2
    failed = records[bad.id]
    assert failed.state == "failed" and failed.error == "RuntimeError: rq failure"
    assert "raise RuntimeError(message)" in failed.traceback
    assert "api_token=***" in failed.arguments and "sk-secret" not in failed.arguments
    crashed = records[killed.id]
    assert crashed.state == "failed" and "WorkHorseTerminated" in crashed.error
    assert "signal 9" in crashed.error

    # One mail for `fail` (the second failure is held back), one for the crash.
    subjects = sorted(str(m["Subject"]).strip() for m in sink.messages)
    assert subjects == [
        "[flask-rpcenable] Background job failed: background_helpers.die",
        "[flask-rpcenable] Background job failed: background_helpers.fail",
    ]
    mail = next(m for m in sink.messages if str(m["Subject"]).strip().endswith(".fail"))
    body = jobs.body_of(mail)
    assert "Backend:   rq" in body and "Traceback (most recent call last)" in body
    assert "api_token=***" in body and "sk-secret-token-42" not in body
    assert sink.envelopes[0].rcpt_tos == ["ops@example.com"]
    assert records[bad_again.id].state == "failed"
    throttle = get_background(rq_app).backend.throttle
    held = throttle.connection.get(f"{throttle.prefix}:background_helpers.fail:held")
    assert int(held) == 1


def test_retries_setting_and_last_failure_mailed_once(
    rq_env: dict[str, Any], smtp: tuple[jobs.MailSink, int], tmp_path: Any
) -> None:
    sink, _ = smtp
    config = dict(rq_env, RPCENABLE_BACKGROUND_RETRIES=2)
    app = jobs.create_app(instance_path=str(tmp_path / "instance"), **config)
    with app.app_context():
        jobs.rpc.state(app).db.create_all()
        handle = jobs.other_fail("three times")
    result = run_worker(config, tmp_path)
    assert result.returncode == 0, result.stderr
    with pytest.raises(BackgroundJobFailed, match="three times"):
        handle.result(timeout=10)
    record = rows(app)[handle.id]
    assert record.state == "failed" and record.attempts == 3
    assert len(sink.envelopes) == 1
    assert "Attempt:   3 of 3" in jobs.body_of(sink.messages[0])


def test_rq_refuses_functions_a_worker_cannot_import(rq_app: Flask) -> None:
    def local() -> None:
        return None

    with rq_app.app_context(), pytest.raises(RuntimeError, match="module level"):
        postpone(local)()


def test_worker_command_needs_the_rq_backend(tmp_path: Any) -> None:
    app = jobs.create_app(
        instance_path=str(tmp_path / "instance"),
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'thread.sqlite'}",
    )
    result = app.test_cli_runner().invoke(args=["rpc", "worker", "--burst"])
    assert result.exit_code != 0
    assert "RPCENABLE_BACKGROUND = 'rq'" in result.output


def test_redis_down_at_scheduling_raises_and_records(tmp_path: Any) -> None:
    """No Redis server needed: nothing listens on the port."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    app = jobs.create_app(
        instance_path=str(tmp_path / "instance"),
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'down.sqlite'}",
        RPCENABLE_BACKGROUND="rq",
        RPCENABLE_RQ_URL=f"redis://127.0.0.1:{jobs.free_port()}/0",
    )
    with app.app_context():
        jobs.rpc.state(app).db.create_all()
        with pytest.raises(RedisConnectionError):
            jobs.whoami()
    [record] = rows(app).values()
    assert record.state == "failed" and record.error.startswith("Not scheduled: ConnectionError")


def test_result_times_out_while_no_worker_runs(rq_app: Flask) -> None:
    with rq_app.app_context():
        handle = jobs.whoami()
    with pytest.raises(TimeoutError, match="status: queued"):
        handle.result(timeout=0.05)


def test_job_run_outside_the_worker_needs_the_app(rq_app: Flask) -> None:
    from flask_rpcenable.background.rq_backend import execute

    with pytest.raises(RuntimeError, match="flask --app yourapp rpc worker"):
        execute("background_helpers:whoami", (), {})
    with rq_app.app_context():  # an app context is enough
        assert execute("background_helpers:whoami", (), {}) == "bgtestapp:None"


def test_job_taken_by_a_dead_worker_before_it_started_is_recorded_and_mailed(
    rq_app: Flask, smtp: tuple[jobs.MailSink, int], tmp_path: Any
) -> None:
    """Issue 15 item 6: RQ's "stuck in intermediate queue" reaches the record and the mail."""
    import time

    from redis import Redis
    from rq import Queue

    from flask_rpcenable.background.rq_worker import make_worker

    with rq_app.app_context():
        handle = jobs.append_line(str(tmp_path / "never.txt"), "x")
        backend = get_background(rq_app).backend
        queue = Queue(rq_app.config["RPCENABLE_RQ_QUEUE"], connection=backend.connection)
        connection: Redis = backend.connection
        # A worker takes the job from the queue and dies before starting it.
        connection.lmove(queue.key, queue.intermediate_queue_key)
        intermediate = queue.intermediate_queue
        connection.set(intermediate.get_first_seen_key(handle.id), time.time() - 120)
        worker = make_worker(rq_app)
        worker.clean_registries()
    record = rows(rq_app)[handle.id]
    assert record.state == "failed"
    assert "Lost" in record.error and "before starting it" in record.error
    sink = smtp[0]
    for _ in range(50):
        if sink.messages:
            break
        time.sleep(0.1)
    assert any(handle.id in jobs.body_of(message) for message in sink.messages)
