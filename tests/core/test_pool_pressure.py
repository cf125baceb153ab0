"""The library's own writes never deadlock the app's connection pool.

Log rows, job records and ``last_login`` stamps are written in transactions
of their own while the request may hold a connection of ``db.session``. With
both taken from one pool, concurrent requests each held one connection and
waited for a second until the pool timed out. They now go through a pool of
their own (:func:`flask_rpcenable.bookkeeping.bookkeeping_engine`).
"""

from __future__ import annotations

import threading
import xmlrpc.client
from pathlib import Path
from typing import Any

from auth_helpers import make_env, v1

from flask_rpcenable.bookkeeping import bookkeeping_engine

#: A pool smaller than the number of concurrent requests, failing fast.
SMALL_POOL = {"pool_size": 2, "max_overflow": 0, "pool_timeout": 3}
CONCURRENT = 12


def test_concurrent_logged_authenticated_calls_with_a_small_pool(
    db_url: str, tmp_path: Path, serve: Any
) -> None:
    env = make_env(
        tmp_path,
        serve=serve,
        RPCENABLE_LOG_INCOMING=True,
        SQLALCHEMY_DATABASE_URI=db_url,
        SQLALCHEMY_ENGINE_OPTIONS=SMALL_POOL,
    )
    kind = db_url.split(":")[0].split("+")[0]
    table = env.rpc.state(env.app).models.IncomingCall.__table__
    key = env.add_user(f"pool-{kind}")
    results: list[Any] = []
    start = threading.Barrier(CONCURRENT)

    def call() -> None:
        proxy = xmlrpc.client.ServerProxy(env.url + "/rpc/")
        start.wait()
        try:
            results.append(proxy.auth_echo(*v1(f"pool-{kind}", key), "hi"))
        except xmlrpc.client.Fault as fault:
            results.append(fault)

    threads = [threading.Thread(target=call) for _ in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [f"User pool-{kind} says: hi"] * CONCURRENT
    with env.app.app_context():
        with env.db.engine.connect() as conn:
            rows = conn.execute(table.select().where(table.c.method == "auth_echo")).all()
        env.db.engine.dispose()
        bookkeeping_engine(env.db).dispose()
    assert len(rows) == CONCURRENT and all(row.fault_code is None for row in rows)


def test_bookkeeping_engine_has_its_own_pool(tmp_path: Path) -> None:
    env = make_env(tmp_path, SQLALCHEMY_ENGINE_OPTIONS=SMALL_POOL)
    with env.app.app_context():
        main = env.db.engine
        side = bookkeeping_engine(env.db)
        assert side is bookkeeping_engine(env.db)
        assert side is not main and side.pool is not main.pool
        assert side.url == main.url and side.pool.size() == main.pool.size()
        with main.connect(), main.connect(), side.connect() as conn:
            # The app's pool is exhausted; the library's still answers.
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_in_memory_sqlite_shares_the_apps_engine(tmp_path: Path) -> None:
    env = make_env(tmp_path, SQLALCHEMY_DATABASE_URI="sqlite://")
    with env.app.app_context():
        assert bookkeeping_engine(env.db) is env.db.engine
