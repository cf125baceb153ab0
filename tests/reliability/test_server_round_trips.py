"""The library's own reads and writes on a database server (PostgreSQL).

A statement that stands alone (the user read of an authenticated call, the
log row of a single call) runs in autocommit mode: one round trip, no
``BEGIN`` and ``COMMIT``. Several log rows of one request stay one
transaction. No connection is pinged on checkout: a connection the server
dropped while idle fails its statement, and the one retry runs on a new
connection, so the call neither fails nor loses its row.
"""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from auth_helpers import AuthEnv, make_env
from log_app import fresh_pg_database

from flask_rpcenable.bookkeeping import bookkeeping_engine


@pytest.fixture
def pg_env(tmp_path: Path, serve: Any) -> Iterator[AuthEnv]:
    """An authenticating app that logs its calls, on a new PostgreSQL database."""
    with fresh_pg_database() as url:
        env = make_env(
            tmp_path, serve=serve, SQLALCHEMY_DATABASE_URI=url, RPCENABLE_LOG_INCOMING=True
        )
        env.add_user("alice")
        try:
            yield env
        finally:
            with env.app.app_context():
                env.db.session.remove()
                for engine in (env.db.engine, bookkeeping_engine(env.db)):
                    engine.dispose()


def _log_rows(env: AuthEnv) -> list[tuple[str, Any]]:
    """The log's rows, read on a connection of their own (the app's may have been dropped)."""
    table = env.rpc.state(env.app).models.IncomingCall.__table__
    with env.app.app_context():
        reader = sa.create_engine(env.db.engine.url, poolclass=sa.pool.NullPool)
    query = sa.select(table.c.method, table.c.multicall_index).order_by(table.c.id)
    try:
        with reader.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]
    finally:
        reader.dispose()


def test_a_lone_statement_runs_in_autocommit_and_rows_of_a_request_in_one_transaction(
    pg_env: AuthEnv,
) -> None:
    seen: list[tuple[str, bool]] = []

    def before(conn: sa.Connection, cursor: Any, statement: str, *_: Any) -> None:
        dbapi_connection = conn.connection.dbapi_connection
        seen.append((statement.split(None, 1)[0], bool(dbapi_connection.autocommit)))

    with pg_env.app.app_context():
        engine = bookkeeping_engine(pg_env.db)
    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        # The first call also stamps last_login and prunes the log, each a transaction.
        assert pg_env.call_as() == "User alice says: x"
        assert ("UPDATE", False) in seen and ("DELETE", False) in seen
        seen.clear()
        assert pg_env.call_as() == "User alice says: x"
        assert seen == [("SELECT", True), ("INSERT", True)]
        seen.clear()
        multi = xmlrpc.client.MultiCall(pg_env.proxy())
        multi.echo("a")
        multi.echo("b")
        assert list(multi()) == ["Server says: a", "Server says: b"]
        assert seen == [("INSERT", False)]  # the envelope and both entries, one transaction
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
    assert len(_log_rows(pg_env)) == 5


def test_a_call_after_the_server_dropped_the_idle_connections_reads_and_logs(
    pg_env: AuthEnv,
) -> None:
    assert pg_env.call_as() == "User alice says: x"  # both pools now hold a connection
    with pg_env.app.app_context():
        url = pg_env.db.engine.url
    killer = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with killer.begin() as conn:  # what a server restart does to idle connections
        dropped = conn.exec_driver_sql(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity "
            "where datname = current_database() and pid <> pg_backend_pid()"
        ).scalar()
    killer.dispose()
    assert dropped >= 1
    assert pg_env.call_as() == "User alice says: x"
    assert _log_rows(pg_env) == [("auth_echo", None), ("auth_echo", None)]
