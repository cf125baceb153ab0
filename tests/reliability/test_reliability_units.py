"""One test per item of issue 15 that needs no load: each failed before the fix."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import textwrap
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from live import build_app, env_or_skip
from log_app import fresh_pg_database

from flask_rpcenable import RPCEnable
from flask_rpcenable import health as health_module
from flask_rpcenable.auth.nonces import CONNECT_TIMEOUT, READ_TIMEOUT, build_cache, redis_client_of
from flask_rpcenable.auth.signing import generate_auth_args
from flask_rpcenable.auth.users import create_api_user
from flask_rpcenable.background.settings import DEFAULTS
from flask_rpcenable.bookkeeping import bookkeeping_engine, bookkeeping_transaction
from flask_rpcenable.health import OUTAGE_MESSAGE, is_outage

CALL = (
    b"<?xml version='1.0'?><methodCall><methodName>echo</methodName>"
    b"<params><param><value><string>hi</string></value></param></params></methodCall>"
)


def _app(tmp_path: Any, i: int) -> Flask:
    app = build_app(tmp_path / f"a{i}", name=f"leak{i}", RPCENABLE_LOG_INCOMING=True)
    rpc = RPCEnable()

    @rpc.register
    def echo(var: str = "") -> str:
        return var

    rpc.init_app(app)
    app.test_client().post("/rpc/", data=CALL, content_type="text/xml")
    return app


def test_item7_an_app_factory_in_a_loop_does_not_keep_apps_alive(tmp_path: Any) -> None:
    _app(tmp_path, 0)
    gc.collect()
    # Counted as growth: engines of earlier tests in this process may still be alive.
    before = sum(isinstance(o, SQLAlchemy) for o in gc.get_objects())
    engines_before = sum(isinstance(o, sa.Engine) for o in gc.get_objects())
    for i in range(1, 31):
        _app(tmp_path, i)
    gc.collect()
    alive = sum(isinstance(o, SQLAlchemy) for o in gc.get_objects()) - before
    engines = sum(isinstance(o, sa.Engine) for o in gc.get_objects()) - engines_before
    assert alive <= 1, f"{alive} SQLAlchemy objects of dropped apps are alive"
    assert engines <= 2, f"{engines} engines of dropped apps alive"


def test_item1_bookkeeping_pool_is_fresh_in_a_forked_child(tmp_path: Any) -> None:
    script = textwrap.dedent(
        f"""
        import os, sys, warnings
        warnings.simplefilter("ignore")
        from live import build_app
        from flask_rpcenable import RPCEnable
        from flask_rpcenable.bookkeeping import bookkeeping_engine
        from pathlib import Path
        app = build_app(Path({str(tmp_path)!r}))
        rpc = RPCEnable(app)
        with app.app_context():
            engine = bookkeeping_engine(rpc.state(app).db)
            with engine.connect() as conn:
                conn.exec_driver_sql("select 1")
            assert engine.pool.checkedin() == 1
            pid = os.fork()
            if pid == 0:
                os._exit(0 if engine.pool.checkedin() == 0 else 3)
            _, status = os.waitpid(pid, 0)
            sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_item3_bookkeeping_writes_survive_a_dropped_connection() -> None:
    env_or_skip("RPCENABLE_TEST_POSTGRES_URL")
    with fresh_pg_database() as url:
        app = Flask("ping")
        app.config.update(SQLALCHEMY_DATABASE_URI=url)
        db = SQLAlchemy()
        db.init_app(app)
        with app.app_context():
            engine = bookkeeping_engine(db)
            bookkeeping_transaction(db, lambda conn: conn.exec_driver_sql("select 1"))
            killer = sa.create_engine(url, poolclass=sa.pool.NullPool)
            with killer.begin() as conn:  # what a server restart does to idle connections
                conn.exec_driver_sql(
                    "select pg_terminate_backend(pid) from pg_stat_activity "
                    "where datname = current_database() and pid <> pg_backend_pid()"
                )
            killer.dispose()
            assert bookkeeping_transaction(
                db, lambda conn: conn.exec_driver_sql("select 2").scalar()
            ) == 2
            engine.dispose()
            db.engine.dispose()


def test_item5_a_bookkeeping_write_is_tried_once_more(tmp_path: Any) -> None:
    app = build_app(tmp_path)
    rpc = RPCEnable(app)
    db = rpc.state(app).db
    tries = []

    def flaky(conn: sa.Connection) -> str:
        tries.append(1)
        if len(tries) == 1:
            raise sa.exc.OperationalError("insert", {}, Exception("database is locked"))
        return "ok"

    with app.app_context():
        assert bookkeeping_transaction(db, flaky) == "ok"
    assert len(tries) == 2


def test_item5_sqlite_busy_timeout_and_client_timeouts(tmp_path: Any) -> None:
    app = build_app(tmp_path)
    rpc = RPCEnable(app)
    with app.app_context(), bookkeeping_engine(rpc.state(app).db).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
    redis_app = Flask("r")
    redis_app.config.update(
        RPCENABLE_CACHE_TYPE="RedisCache", RPCENABLE_CACHE_REDIS_URL="redis://127.0.0.1:1/0"
    )
    cache = build_cache(redis_app)
    backend = redis_app.extensions["cache"][cache]
    kwargs = redis_client_of(backend).connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == CONNECT_TIMEOUT
    assert kwargs["socket_timeout"] == READ_TIMEOUT
    assert READ_TIMEOUT <= 5


def _auth_app(tmp_path: Any, **config: Any) -> tuple[Flask, str]:
    app = build_app(tmp_path, RPCENABLE_LOG_INCOMING=True, **config)
    rpc = RPCEnable()

    @rpc.register
    @rpc.auth
    def whoami(user: Any) -> str:
        return str(user.username)

    @rpc.register
    def boom() -> str:
        raise ValueError("a bug")

    rpc.init_app(app)
    state = rpc.state(app)
    with app.app_context():
        state.db.create_all()
        _, key = create_api_user(state.db, state.models.APIUser, "alice")
    return app, key


def _call(app: Flask, method: str, *params: Any) -> Any:
    body = xmlrpc.client.dumps(params, method)
    response = app.test_client().post("/rpc/", data=body, content_type="text/xml")
    try:
        return xmlrpc.client.loads(response.data)[0][0]
    except xmlrpc.client.Fault as fault:
        return fault


def test_item4_cache_down_is_a_system_error_and_logged_briefly(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app, key = _auth_app(
        tmp_path, RPCENABLE_CACHE_TYPE="RedisCache",
        RPCENABLE_CACHE_REDIS_URL="redis://127.0.0.1:1/0",  # nothing listens there
    )
    with caplog.at_level(logging.ERROR):
        start = time.monotonic()
        faults = [_call(app, "whoami", *generate_auth_args("alice", key)) for _ in range(10)]
        took = time.monotonic() - start
    assert {(f.faultCode, f.faultString) for f in faults} == {(-32400, OUTAGE_MESSAGE)}
    assert took < 10
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1, [r.getMessage() for r in tracebacks]
    bug = _call(app, "boom")
    assert bug.faultCode == -32500  # a bug stays a bug


def test_item4_database_errors_that_are_outages() -> None:
    exc = sa.exc.OperationalError("select", {}, Exception("connection refused"))
    assert is_outage(exc)
    assert not is_outage(sa.exc.IntegrityError("insert", {}, Exception("duplicate")))
    assert not is_outage(ValueError("x"))


def test_item4_write_failures_logged_in_full_once_then_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logs = health_module.FailureLogs("bookkeeping writes")
    logs.interval = 0.2
    logger = logging.getLogger("rel-test")
    app = Flask("w")
    with caplog.at_level(logging.ERROR, logger="rel-test"):
        end = time.monotonic() + 0.5
        i = 0
        while time.monotonic() < end:  # an outage: failures without a pause
            i += 1
            try:
                raise RuntimeError("down")
            except RuntimeError:
                logs.failed(app, logger, f"the record of RPC call 'm{i}'", "writing %s failed", i)
            time.sleep(0.005)
    full = [r for r in caplog.records if r.exc_info]
    assert len(full) == 1
    assert any("more bookkeeping writes failed" in r.getMessage() for r in caplog.records)
    assert i > 20 and len(caplog.records) <= 4


def test_item2_shutdown_timeout_fits_gunicorns_graceful_timeout() -> None:
    assert DEFAULTS["RPCENABLE_BACKGROUND_SHUTDOWN_TIMEOUT"] < 30
