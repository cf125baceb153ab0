"""Small database helpers shared by the models of the components.

The call log (:mod:`flask_rpcenable.calllog.models`), the job records
(:mod:`flask_rpcenable.background.records`) and the built-in API user
(:mod:`flask_rpcenable.auth.users`) define their models on the app's own
Flask-SQLAlchemy object, once per object: :func:`once_per_db` does that
caching. The time and primary-key helpers keep their columns alike;
:func:`report_write_failure` reports a failed bookkeeping write (see
:mod:`flask_rpcenable.bookkeeping`, which gives the library's own writes a
connection pool of their own).
"""

from __future__ import annotations

import datetime
import functools
import logging
import re
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from flask import current_app

from . import health

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

__all__ = [
    "AtMostEvery",
    "as_utc",
    "id_column",
    "id_type",
    "missing_table",
    "once_per_db",
    "report_write_failure",
    "utcnow",
]

T = TypeVar("T")


def utcnow() -> datetime.datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.datetime.now(datetime.timezone.utc)


def as_utc(value: datetime.datetime | None) -> datetime.datetime | None:
    """A stored timestamp as an aware UTC datetime.

    SQLite hands naive datetimes back (stored in UTC), PostgreSQL aware ones.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def id_type() -> sa.types.TypeEngine[int]:
    """The type of a primary key that may grow large (logs, job histories).

    BIGINT, but INTEGER on SQLite, where only an INTEGER primary key
    autoincrements.
    """
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def id_column() -> sa.Column[Any]:
    """A new autoincrementing primary-key column of :func:`id_type`."""
    return sa.Column(id_type(), primary_key=True)


def once_per_db(build: Callable[[SQLAlchemy], T]) -> Callable[[SQLAlchemy], T]:
    """Make ``build(db)`` run once per Flask-SQLAlchemy object.

    Declaring a model twice on one metadata fails, so a model factory
    decorated with this returns the classes it built the first time for
    that ``db``. They are kept on the ``db`` object itself: the models refer
    back to their ``db``, so a map keyed by ``db`` (even a weak one) would
    keep both alive for ever, while an attribute makes an ordinary cycle that
    the garbage collector frees with the ``db`` (an app factory called in a
    loop does not grow).
    """
    lock = threading.Lock()
    attribute = f"_rpcenable_once_{build.__module__}.{build.__qualname__}"

    @functools.wraps(build)
    def define(db: SQLAlchemy) -> T:
        with lock:
            built: T | None = db.__dict__.get(attribute)
            if built is None:
                built = build(db)
                setattr(db, attribute, built)
            return built

    return define


class AtMostEvery:
    """A thread-safe gate that opens at most once per ``interval`` seconds.

    The first :meth:`due` of a process is true; later ones only once the
    interval has passed since the last true one. Used to prune old log rows
    and job records now and then from the write path.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: float | None = None
        self._lock = threading.Lock()

    def due(self) -> bool:
        """Whether the gated work should run now (and mark it as run)."""
        now = time.monotonic()
        last = self._last
        if last is not None and now - last < self.interval:
            return False  # the common case, decided without the lock
        with self._lock:
            if self._last is not None and now - self._last < self.interval:
                return False
            self._last = now
            return True

    def reset(self) -> None:
        """Open the gate again, as in a fresh process."""
        with self._lock:
            self._last = None


_MISSING_TABLE = re.compile(
    r"no such table: (?P<sqlite>[\w.]+)"  # SQLite
    r"|relation \"(?P<postgres>[^\"]+)\" does not exist"  # PostgreSQL
    r"|Table '(?P<mysql>[^']+)' doesn't exist"  # MySQL, MariaDB
)
#: Per app, the missing tables already reported.
_reported_tables: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_reported_lock = threading.Lock()


def missing_table(exc: BaseException) -> str | None:
    """The name of the table whose absence caused ``exc``, or ``None``."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    found = _MISSING_TABLE.search(str(exc.orig))
    if found is None:
        return None
    return next(name for name in found.groups() if name)


def report_write_failure(logger: logging.Logger, what: str) -> None:
    """Log the exception being handled, which stopped a bookkeeping write of ``what``.

    A missing table (the app's database has not been set up for us yet) is
    logged once per table and app, as one line that names the command to
    run, instead of a traceback on every call or job. Any other failure goes
    through a :class:`FailureLog`: the first with its traceback, then a count
    at most once per :data:`FAILURE_LOG_INTERVAL`. Call it from an
    ``except`` block, in an app context.
    """
    exc = sys.exc_info()[1]
    table = missing_table(exc) if exc is not None else None
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if table is None:
        health.write_failures.failed(app, logger, what, "flask-rpcenable: writing %s failed", what)
        return
    with _reported_lock:
        reported = _reported_tables.setdefault(app, set())
        first = table not in reported
        reported.add(table)
    if first:
        logger.warning(
            "flask-rpcenable: the table %s does not exist in the app's database, so %s and "
            "others like it are not written. Create the tables with `flask rpc init-db` "
            "(or add them to the app's migrations).",
            table,
            what,
        )
