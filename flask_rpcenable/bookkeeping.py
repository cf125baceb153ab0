"""The library's own connection pool and its bookkeeping writes.

The call log's rows, job records and ``last_login`` stamps are written in
short transactions of their own, on a pool of their own
(:func:`bookkeeping_engine`), never in the request's ``db.session``. A write
that fails because the connection was lost or SQLite was locked is tried
once more (:func:`bookkeeping_attempts`); one that would wait for a write
lock the request's own session holds on SQLite is done after the response
(:func:`bookkeeping_write`).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from flask import after_this_request, current_app, has_app_context, has_request_context

from . import health
from .db import report_write_failure

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

__all__ = [
    "RETRY_PAUSE",
    "autocommit_engine",
    "bookkeeping_attempts",
    "bookkeeping_engine",
    "bookkeeping_transaction",
    "bookkeeping_write",
    "bookkeeping_write_with",
    "dispose_after_fork",
]

T = TypeVar("T")

#: Seconds between the two tries of a bookkeeping write.
RETRY_PAUSE = 0.05


#: Every bookkeeping engine of this process, for disposing of them after a fork.
_bookkeeping_engines: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
_bookkeeping_lock = threading.Lock()
_BOOKKEEPING_ATTR = "_rpcenable_bookkeeping"
_AUTOCOMMIT_ATTR = "_rpcenable_autocommit"


def bookkeeping_engine(db: SQLAlchemy) -> sa.Engine:
    """An engine on the same database as ``db.engine`` with a pool of its own.

    The library writes its log rows, job records and ``last_login`` stamps in
    short transactions of their own, while the request that causes them may
    hold a connection of ``db.session``. Taken from the same pool, that is a
    second connection per request: under load every request holds one and
    waits for another, and the pool deadlocks until its timeout. A separate
    pool (same URL, connect arguments and connect hooks, through
    :meth:`sqlalchemy.pool.Pool.recreate`) can always make progress, because
    its connections are held only for one quick write.

    Its connections are not tested on checkout (a ping would be one more
    round trip to a database server for every write): a write or a read on a
    connection the server dropped while it sat idle fails, SQLAlchemy then
    invalidates the pool, and the one retry of :func:`bookkeeping_attempts`
    runs on a fresh connection. It is kept on the app's engine (freed with
    it) and disposed of in a forked child, which must not use its parent's
    connections.

    An in-memory SQLite database exists only behind its own single
    connection, so there the app's engine itself is returned. Needs an app
    context (for ``db.engine``).
    """
    main = db.engine
    if not isinstance(main.pool, sa.pool.QueuePool):
        # SingletonThreadPool / StaticPool: in-memory SQLite and the like.
        return main
    engine: sa.Engine | None = main.__dict__.get(_BOOKKEEPING_ATTR)
    if engine is not None:
        return engine
    with _bookkeeping_lock:
        engine = main.__dict__.get(_BOOKKEEPING_ATTR)
        if engine is None:
            engine = sa.engine.Engine(main.pool.recreate(), main.dialect, main.url)
            setattr(main, _BOOKKEEPING_ATTR, engine)
            _bookkeeping_engines.add(engine)
        return engine


def autocommit_engine(engine: sa.Engine) -> sa.Engine:
    """``engine`` (a bookkeeping engine) in autocommit mode, sharing its pool.

    For work of one statement, which is atomic on its own: on a database
    server it then costs fewer round trips than a transaction, which sends
    ``BEGIN`` (a driver such as psycopg2 does so on its own), the statement
    and ``COMMIT``. SQLAlchemy sets autocommit on the connection when it is
    taken and resets it when it goes back (with psycopg2 the reset is one
    short statement). Made once per engine.
    """
    found: sa.Engine | None = engine.__dict__.get(_AUTOCOMMIT_ATTR)
    if found is None:
        found = engine.execution_options(isolation_level="AUTOCOMMIT")
        setattr(engine, _AUTOCOMMIT_ATTR, found)
    return found


def dispose_after_fork() -> None:
    """Forget (without closing) the connections of every bookkeeping engine.

    Runs in each forked child (gunicorn ``--preload`` workers, RQ work
    horses): a socket shared with the parent must never carry the child's
    statements, or a killed child leaves the parent writing into its
    half-done transaction.
    """
    global _bookkeeping_lock
    _bookkeeping_lock = threading.Lock()
    for engine in list(_bookkeeping_engines):
        engine.dispose(close=False)
    health.reset_after_fork()


def _session_holds_sqlite_write(db: SQLAlchemy) -> bool:
    """Whether the request's ``db.session`` holds SQLite's write lock right now.

    SQLite has one writer at a time: while the app's session has flushed
    but not committed (user code wrote, then failed, or a multicall's earlier
    sub-call wrote), any other connection waits for the lock until its busy
    timeout and then fails.
    """
    # Most requests have no session at all: that is the cheapest test, so it comes first.
    scoped = db.session
    if not has_request_context() or not scoped.registry.has():
        return False
    if db.engine.dialect.name != "sqlite":
        return False
    session = scoped()
    if not session.in_transaction():
        return False
    try:
        dbapi_connection = session.connection().connection.dbapi_connection
    except Exception:
        return False
    return bool(getattr(dbapi_connection, "in_transaction", False))


def _worth_retrying(exc: BaseException) -> bool:
    """Whether a failed bookkeeping write may succeed when tried once more.

    A connection the database dropped (SQLAlchemy has invalidated the pool,
    the retry gets a fresh connection) or SQLite's "database is locked".
    """
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, sa.exc.DisconnectionError):
        return True
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


def bookkeeping_transaction(db: SQLAlchemy, work: Callable[[sa.Connection], T]) -> T:
    """Run ``work(connection)`` in a transaction on :func:`bookkeeping_engine`.

    A write that fails because the connection was lost or SQLite was locked
    is tried once more, after a short pause. Any other failure, or a second
    one, is raised.
    """

    def attempt(engine: sa.Engine) -> T:
        with engine.begin() as conn:
            return work(conn)

    return bookkeeping_attempts(db, attempt)


def bookkeeping_attempts(
    db: SQLAlchemy, attempt: Callable[[sa.Engine], T], engine: sa.Engine | None = None
) -> T:
    """Run ``attempt(engine)`` on :func:`bookkeeping_engine`, once more if worth it.

    ``engine`` is ``bookkeeping_engine(db)``, or its :func:`autocommit_engine`,
    when the caller has it already.

    ``attempt`` takes its connection from the engine and ends its
    transaction itself (:func:`bookkeeping_transaction` uses
    ``engine.begin()``; the call log a raw DBAPI connection of the same
    pool). It must raise SQLAlchemy's :class:`~sqlalchemy.exc.DBAPIError`
    for a database error: a lost connection or SQLite's "database is
    locked" is tried once more, after a short pause; any other failure, or
    a second one, is raised.
    """
    engine = engine or bookkeeping_engine(db)
    for tries in (1, 2):
        try:
            result = attempt(engine)
        except sa.exc.DBAPIError as exc:
            if tries == 2 or not _worth_retrying(exc):
                raise
            time.sleep(RETRY_PAUSE)
            continue
        if has_app_context():
            health.write_failures.recovered(current_app._get_current_object())  # type: ignore[attr-defined]
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def bookkeeping_write(db: SQLAlchemy, write: Callable[[sa.Connection], Any], what: str) -> None:
    """Run ``write(connection)`` through :func:`bookkeeping_transaction`.

    Normally at once. When the request's own session holds SQLite's write
    lock, the write waits until the response is closed (the session is gone
    by then), so that it neither blocks on that lock nor fails. A failure
    after the response is logged; one now is raised to the caller.

    :param what: what is written, for the log message of a late failure.
    """
    bookkeeping_write_with(db, lambda: bookkeeping_transaction(db, write), what)


def bookkeeping_write_with(db: SQLAlchemy, run: Callable[[], Any], what: str) -> None:
    """Call ``run()``, a bookkeeping write, now or, as :func:`bookkeeping_write` says, later.

    For writes that do not go through :func:`bookkeeping_transaction` (the
    call log's rows, sent on a raw DBAPI connection through
    :func:`bookkeeping_attempts`).
    """
    if not _session_holds_sqlite_write(db):
        run()
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def late() -> None:
        with app.app_context():
            try:
                run()
            except Exception:
                report_write_failure(app.logger, what)

    def attach(response: Any) -> Any:
        response.call_on_close(late)
        return response

    after_this_request(attach)



if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=dispose_after_fork)
