"""The record of each background job: its states, errors and redacted arguments, what happens
when it cannot be written, and how records are shown in the admin and pruned."""

from __future__ import annotations

import base64
import datetime
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import background_helpers as jobs
import pytest
from background_helpers import record, records
from flask import Flask

from flask_rpcenable import RPCEnable
from flask_rpcenable.background import BackgroundJobFailed
from flask_rpcenable.background.core import get_background

# -- the record ----------------------------------------------------------------


def test_model_is_defined_once_per_db(bg_app: Callable[..., Flask]) -> None:
    app = bg_app()
    state = jobs.rpc.state(app)
    second = RPCEnable(name="internal", url_prefix="/internal")
    second.init_app(app)
    assert second.state(app).models.BackgroundJob is state.models.BackgroundJob
    assert state.models.BackgroundJob.__tablename__ == "rpcenable_background_job"


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
