"""How the call log writes its rows: one transaction per HTTP request, and on SQLite a raw
connection of the log's own pool (``BEGIN IMMEDIATE``, one ``executemany``, ``COMMIT``) whose
failures are retried and reported as SQLAlchemy's would be. No timing is asserted."""

from __future__ import annotations

import datetime
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from log_app import LogApp

from flask_rpcenable import bookkeeping
from flask_rpcenable.bookkeeping import RETRY_PAUSE, bookkeeping_engine
from flask_rpcenable.calllog.prepared import PreparedInsert
from flask_rpcenable.calllog.recorder import INCOMING_KEYS, record_outgoing
from flask_rpcenable.db import missing_table

MakeLogApp = Callable[..., LogApp]


@dataclass
class Traced:
    """What the log's own SQLite connections did while traced."""

    statements: list[str] = field(default_factory=list)
    checkouts: int = 0

    def kinds(self) -> list[str]:
        """Each statement's first words: ``BEGIN IMMEDIATE``, ``INSERT``, ``COMMIT`` ..."""
        return [
            "BEGIN IMMEDIATE" if s.startswith("BEGIN IMMEDIATE") else s.split()[0].upper()
            for s in self.statements
        ]


@contextmanager
def pool_events(log: LogApp, **hooks: Callable[..., None]) -> Iterator[None]:
    """Listen to events of the log's own pool (by name: ``checkout=...``) for the block."""
    with log.app.app_context():
        pool = bookkeeping_engine(log.db).pool
    for name, hook in hooks.items():
        sa.event.listen(pool, name, hook)
    try:
        yield
    finally:
        for name, hook in hooks.items():
            sa.event.remove(pool, name, hook)


@contextmanager
def traced(log: LogApp) -> Iterator[Traced]:
    """Count the checkouts of the log's pool; on SQLite, trace every statement run on them."""
    seen = Traced()

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        seen.checkouts += 1
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.set_trace_callback(seen.statements.append)

    def checkin(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.set_trace_callback(None)

    with pool_events(log, checkout=checkout, checkin=checkin):
        yield seen


def sqlite_log(tmp_path: Path, make_log_app: MakeLogApp, **config: Any) -> tuple[LogApp, Path]:
    """An app logging to a SQLite file, after a first call (which also prunes old rows)."""
    path = tmp_path / "log.sqlite"
    log = make_log_app(f"sqlite:///{path}", **config)
    assert log.call("echo", "first") == "Server says: first"
    return log, path


@dataclass
class Pauses:
    """The pauses between the two tries of a bookkeeping write, taken at once."""

    taken: list[float] = field(default_factory=list)
    #: Run during the pause (to free a lock, say).
    during: Callable[[], Any] | None = None

    def sleep(self, seconds: float) -> None:
        self.taken.append(seconds)
        if self.during is not None:
            self.during()


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> Pauses:
    taken = Pauses()
    monkeypatch.setattr(bookkeeping.time, "sleep", taken.sleep)
    return taken


# -- one transaction per request ------------------------------------------------------


def test_a_100_entry_multicall_writes_its_101_rows_in_one_transaction(
    db_url: str, make_log_app: MakeLogApp
) -> None:
    log = make_log_app(db_url)
    log.call("echo", "first")  # the first write of a process also prunes old rows
    calls = [{"methodName": "echo", "params": [str(i)]} for i in range(100)]
    commits: list[Any] = []

    def on_commit(conn: Any) -> None:
        commits.append(conn)

    sa.event.listen(sa.engine.Engine, "commit", on_commit)
    try:
        with traced(log) as seen:
            result = log.call("system.multicall", calls)
    finally:
        sa.event.remove(sa.engine.Engine, "commit", on_commit)
    assert [r[0] for r in result] == [f"Server says: {i}" for i in range(100)]
    rows = log.rows()[1:]
    assert len(rows) == 101
    assert len({r.request_id for r in rows}) == 1
    assert seen.checkouts == 1  # one connection
    if db_url.startswith("sqlite"):
        # One transaction, every row in it.
        assert seen.kinds() == ["BEGIN IMMEDIATE"] + ["INSERT"] * 101 + ["COMMIT"]
        assert commits == []  # no SQLAlchemy Connection involved
    else:
        assert len(commits) == 1
        with log.app.app_context(), log.db.engine.connect() as conn:
            # Rows written by one transaction carry its id in xmin.
            transactions = conn.execute(
                sa.text(
                    "SELECT count(DISTINCT xmin::text) FROM rpcenable_incoming_call "
                    "WHERE request_id = :request"
                ),
                {"request": rows[0].request_id},
            ).scalar_one()
        assert transactions == 1


def test_a_logged_call_on_sqlite_is_begin_insert_commit(
    tmp_path: Path, make_log_app: MakeLogApp
) -> None:
    log, _ = sqlite_log(tmp_path, make_log_app)
    with traced(log) as seen:
        assert log.call("echo", "x") == "Server says: x"
    assert seen.checkouts == 1
    assert seen.kinds() == ["BEGIN IMMEDIATE", "INSERT", "COMMIT"]
    assert seen.statements[1].startswith("INSERT INTO rpcenable_incoming_call")


def test_rows_sent_raw_are_stored_as_sqlalchemy_stores_them(
    tmp_path: Path, make_log_app: MakeLogApp
) -> None:
    """The bind processors (dates as text, booleans as integers) are applied as SQLAlchemy would."""
    log, path = sqlite_log(tmp_path, make_log_app)
    table = log.IncomingCall.__table__
    when = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.timezone.utc)
    values = {
        "created_at": when,
        "method": "m",
        "version": 3,
        "protocol": "xmlrpc",
        "path": "/rpc/",
        "params": '["é"]',
        "result": "1",
        "ok": False,
        "fault_code": 7,
        "fault_string": "no",
        "traceback": None,
        "duration_ms": 1.25,
        "remote_addr": "::1",
        "username": "u",
        "request_size": 10,
        "multicall_index": 0,
        "request_id": "raw",
    }
    with log.app.app_context():
        engine = bookkeeping_engine(log.db)
        prepared = PreparedInsert(table.insert(), engine.dialect, INCOMING_KEYS)
        assert prepared.local
        row = tuple(values[key] for key in INCOMING_KEYS)
        prepared.write_local(engine, prepared.parameters([row]))
        with engine.begin() as conn:
            conn.execute(table.insert(), {**values, "request_id": "sqlalchemy"})
    columns = ", ".join(f"{key}, typeof({key})" for key in INCOMING_KEYS if key != "request_id")
    with sqlite3.connect(path) as raw:
        stored = raw.execute(
            f"SELECT {columns} FROM rpcenable_incoming_call "  # noqa: S608 (our own names)
            "WHERE request_id IN ('raw', 'sqlalchemy') ORDER BY request_id"
        ).fetchall()
    assert len(stored) == 2 and stored[0] == stored[1]
    [read] = [r for r in log.rows() if r.request_id == "raw"]
    assert read.created_at.replace(tzinfo=datetime.timezone.utc) == when
    assert read.ok is False and read.duration_ms == 1.25


def test_prepared_insert_needs_every_column_the_statement_takes(
    make_log_app: MakeLogApp,
) -> None:
    log = make_log_app(None)
    with log.app.app_context():
        dialect = log.db.engine.dialect
    # created_at has a default: SQLite would be sent no value for it.
    with pytest.raises(ValueError, match="every column"):
        PreparedInsert(log.IncomingCall.__table__.insert(), dialect, ("method", "ok"))


# -- failures of the raw connection ------------------------------------------------------


def test_a_locked_database_is_tried_once_more(
    tmp_path: Path, make_log_app: MakeLogApp, pauses: Pauses, caplog: pytest.LogCaptureFixture
) -> None:
    log, path = sqlite_log(tmp_path, make_log_app)

    def no_wait(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    # Another writer holds SQLite's lock until the pause between the two tries.
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    pauses.during = lambda: holder.execute("COMMIT")
    try:
        with pool_events(log, checkout=no_wait), caplog.at_level(logging.WARNING):
            assert log.call("echo", "waited") == "Server says: waited"
    finally:
        holder.close()
    assert pauses.taken == [RETRY_PAUSE]
    assert log.rows()[-1].params == '["waited"]'
    assert not caplog.records


def test_a_closed_connection_is_replaced_and_the_write_tried_again(
    tmp_path: Path, make_log_app: MakeLogApp, pauses: Pauses, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLAlchemy's disconnect test applies: the pooled connection is invalidated, the retry
    gets a new one."""
    log, _ = sqlite_log(tmp_path, make_log_app)
    closed: list[Any] = []

    def close_once(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if not closed:
            closed.append(dbapi_connection)
            dbapi_connection.close()

    with pool_events(log, checkout=close_once), caplog.at_level(logging.WARNING):
        assert log.call("echo", "again") == "Server says: again"
    assert len(closed) == 1 and pauses.taken == [RETRY_PAUSE]
    assert log.rows()[-1].params == '["again"]'
    assert not caplog.records


def test_a_failed_write_leaves_no_transaction_open(
    tmp_path: Path, make_log_app: MakeLogApp, caplog: pytest.LogCaptureFixture
) -> None:
    """The write fails after BEGIN IMMEDIATE: the pool rolls back, so SQLite's lock is free."""
    log, path = sqlite_log(tmp_path, make_log_app)
    with log.app.app_context():
        log.IncomingCall.__table__.drop(log.db.engine)
    with caplog.at_level(logging.WARNING):
        assert log.call("echo", "lost") == "Server says: lost"
    assert any("rpcenable_incoming_call does not exist" in r.getMessage() for r in caplog.records)
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")  # "database is locked" if a transaction stayed open
        probe.execute("ROLLBACK")
    finally:
        probe.close()
    with log.app.app_context():
        log.IncomingCall.__table__.create(log.db.engine)
    assert log.call("echo", "kept") == "Server says: kept"
    assert [r.params for r in log.rows()] == ['["kept"]']


def test_a_database_error_is_raised_as_sqlalchemy_raises_it(make_log_app: MakeLogApp) -> None:
    """A DBAPIError around the driver's error: the retry test and the reports read it."""
    log = make_log_app(None, create=False)
    with log.app.app_context():
        engine = bookkeeping_engine(log.db)
        table = log.IncomingCall.__table__
        prepared = PreparedInsert(table.insert(), engine.dialect, INCOMING_KEYS)
        row = tuple(None for _ in INCOMING_KEYS)
        with pytest.raises(sa.exc.OperationalError) as caught:
            prepared.write_local(engine, prepared.parameters([row]))
    assert isinstance(caught.value.orig, sqlite3.OperationalError)
    assert missing_table(caught.value) == "rpcenable_incoming_call"
    assert not caught.value.connection_invalidated


def test_outgoing_rows_take_the_same_path(tmp_path: Path, make_log_app: MakeLogApp) -> None:
    log, _ = sqlite_log(tmp_path, make_log_app)
    with traced(log) as seen, log.app.app_context():
        record_outgoing(url="http://h/", method="m", params=[1], response=2, duration_ms=1.0)
    assert seen.kinds() == ["BEGIN IMMEDIATE", "INSERT", "COMMIT"]
    [row] = log.rows(log.OutgoingCall)
    assert (row.method, row.params, row.response, row.ok) == ("m", "[1]", "2", True)
