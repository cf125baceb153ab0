"""The call log's write per HTTP request: its rows are committed before the response, apart
from the app's own session, within a byte budget per request; a log database that fails never
fails the call."""

from __future__ import annotations

import logging
import xmlrpc.client
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from log_app import LogApp, fresh_pg_database

from flask_rpcenable.calllog.recorder import DEFAULTS, record_outgoing

MakeLogApp = Callable[..., LogApp]


def test_rollback_in_user_code_keeps_the_log_row(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    fault = log.call("write_then_fail", "lost")
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == -32500
    assert log.call("write", "kept") == "kept"
    with log.app.app_context():
        texts = log.db.session.scalars(sa.select(log.Note.text)).all()
    assert texts == ["kept"]
    assert [r.method for r in log.rows()] == ["write_then_fail", "write"]


def test_failed_log_write_does_not_disturb_user_session(
    db_url: str, make_log_app: MakeLogApp, caplog: pytest.LogCaptureFixture
) -> None:
    log = make_log_app(db_url)
    with log.app.app_context():
        log.IncomingCall.__table__.drop(log.db.engine)
    with caplog.at_level(logging.WARNING):
        assert log.call("write", "still saved") == "still saved"
    with log.app.app_context():
        assert log.db.session.scalars(sa.select(log.Note.text)).all() == ["still saved"]
    assert any(
        "rpcenable_incoming_call does not exist" in r.getMessage() for r in caplog.records
    )


def test_database_down_sqlite(
    tmp_path: Any, make_log_app: MakeLogApp, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'log.sqlite'}"
    log = make_log_app(url, create=False)
    with caplog.at_level(logging.ERROR):
        assert log.call("echo", "anyway") == "Server says: anyway"
        with log.app.app_context():
            record_outgoing(url="http://x/", method="m", params=[], duration_ms=1.0)
    messages = [r.getMessage() for r in caplog.records]
    assert any("writing the record of RPC call 'echo' failed" in m for m in messages)
    assert any("writing the log row of outgoing call 'm' failed" in m for m in messages)


def test_database_down_postgresql(
    make_log_app: MakeLogApp, caplog: pytest.LogCaptureFixture
) -> None:
    with fresh_pg_database() as url:
        log = make_log_app(url)
        assert log.call("echo", "up") == "Server says: up"
        log.dispose()
    # The database is gone now: the server answers, the log write cannot.
    with caplog.at_level(logging.ERROR):
        assert log.call("echo", "down") == "Server says: down"
    messages = [r.getMessage() for r in caplog.records]
    assert any("writing the record of RPC call 'echo' failed" in m for m in messages)


def _incoming_rows(engine: sa.Engine, log: Any) -> int:
    """The incoming rows committed now, read on a connection of the test's own engine."""
    with engine.connect() as conn:
        table = log.IncomingCall.__table__
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_row_is_committed_before_the_response(
    db_url: str, make_log_app: MakeLogApp, serve: Any
) -> None:
    log = make_log_app(db_url)
    server = serve(log.app)
    proxy = xmlrpc.client.ServerProxy(f"{server.url}/rpc/")
    engine = sa.create_engine(db_url)
    try:
        for i in range(3):
            assert proxy.echo(str(i)) == f"Server says: {i}"
            assert _incoming_rows(engine, log) == i + 1
    finally:
        proxy("close")()
        engine.dispose()


# -- a budget per HTTP request, one transaction per request (issue 14, item 2) ------


def _stored_bytes(rows: list[Any]) -> int:
    return sum(len((r.params or "").encode()) + len((r.result or "").encode()) for r in rows)


def test_default_budget_is_at_most_a_megabyte() -> None:
    assert 0 < DEFAULTS["RPCENABLE_LOG_REQUEST_BUDGET"] <= 1_000_000


def test_multicall_stores_at_most_the_budget(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url, RPCENABLE_LOG_REQUEST_BUDGET=50_000)
    calls = [{"methodName": "echo", "params": ["x" * 9_900]} for _ in range(20)]
    result = log.call("system.multicall", calls)
    assert len(result) == 20
    rows = log.rows()
    # Every call still has its row, with its metadata.
    assert len(rows) == 21
    assert sorted(r.multicall_index for r in rows[:-1]) == list(range(20))
    assert all(r.ok and r.method == "echo" and r.duration_ms is not None for r in rows[:-1])
    assert _stored_bytes(rows) <= 50_000
    entries = rows[:-1]
    stored = [r for r in entries if "x" * 100 in (r.params or "")]
    dropped = [r for r in entries if "RPCENABLE_LOG_REQUEST_BUDGET" in (r.params or "")]
    assert 2 <= len(stored) <= 3 and len(stored) + len(dropped) == 20
    assert all(r.result is None for r in dropped)
    # The next request has a budget of its own.
    assert log.call("echo", "y" * 9_900) == "Server says: " + "y" * 9_900
    assert "y" * 9_900 in log.rows()[-1].params


def test_budget_zero_keeps_metadata_only(make_log_app: MakeLogApp, tmp_path: Any) -> None:
    log = make_log_app(f"sqlite:///{tmp_path / 'b0.sqlite'}", RPCENABLE_LOG_REQUEST_BUDGET=0)
    log.call("echo", "z")
    (row,) = log.rows()
    assert row.method == "echo" and row.ok and "RPCENABLE_LOG_REQUEST_BUDGET" in row.params


def test_budget_setting_is_checked(make_log_app: MakeLogApp) -> None:
    with pytest.raises(RuntimeError, match="RPCENABLE_LOG_REQUEST_BUDGET"):
        make_log_app(None, RPCENABLE_LOG_REQUEST_BUDGET=-1)


def test_multicall_rows_are_committed_before_the_response(
    db_url: str, make_log_app: MakeLogApp, serve: Any
) -> None:
    log = make_log_app(db_url)
    server = serve(log.app)
    proxy = xmlrpc.client.ServerProxy(f"{server.url}/rpc/")
    engine = sa.create_engine(db_url)
    try:
        multi = xmlrpc.client.MultiCall(proxy)
        for i in range(5):
            multi.echo(str(i))
        assert list(multi()) == [f"Server says: {i}" for i in range(5)]
        assert _incoming_rows(engine, log) == 6
    finally:
        engine.dispose()
