"""Telling outages from bugs, and logging runs of like failures briefly.

When a database or cache the server depends on is down, every call fails
the same way. :func:`is_outage` recognises such failures, so that the
dispatcher answers them with fault -32400 (``SYSTEM_ERROR``,
:data:`OUTAGE_MESSAGE`: the client may try again later) instead of the
generic -32500; and :class:`FailureLog` logs the first failure of a run with
its traceback and then only a count now and then, instead of megabytes of
identical tracebacks.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
import weakref
from typing import Any

import sqlalchemy as sa
from flask import current_app

__all__ = [
    "FAILURE_LOG_INTERVAL",
    "OUTAGE_MESSAGE",
    "FailureLog",
    "FailureLogs",
    "is_outage",
    "report_outage",
    "reset_after_fork",
    "write_failures",
]

#: After the first failure of a run (logged in full), at most one summary line
#: per this many seconds.
FAILURE_LOG_INTERVAL = 60.0
#: The message of fault -32400 (``SYSTEM_ERROR``) when a database or cache is down.
OUTAGE_MESSAGE = (
    "System error: a service the server depends on (database or cache) is unavailable; "
    "try again later."
)


class FailureLog:
    """Logs a run of like failures: the first in full, then a count now and then.

    During an outage every call fails the same way; a traceback for each
    would flood the log (megabytes a second). The first failure of a run is
    logged with its traceback, later ones are counted and summed up at most
    once per ``interval`` seconds, and the first success after them ends
    the run with one line.
    """

    def __init__(self, what: str, interval: float) -> None:
        self.what = what
        self.interval = interval
        self.reset_after_fork()

    def reset_after_fork(self) -> None:
        """A fresh state (and lock): at creation and in a forked child."""
        self._lock = threading.Lock()
        self._logger: logging.Logger | None = None
        self._count = 0
        self._last = 0.0
        self._seen = 0.0

    def failed(self, logger: logging.Logger, message: str, *args: Any) -> None:
        """Log the exception being handled as a failure of this kind.

        A run ends at the next :meth:`recovered` or after a quiet ``interval``.
        """
        exc = sys.exc_info()[1]
        now = time.monotonic()
        with self._lock:
            leftover = 0
            first = self._logger is None or now - self._seen >= self.interval
            if first:
                leftover, self._count, self._last = self._count, 0, now
            else:
                self._count += 1
            self._logger, self._seen = logger, now
            count = 0
            if not first and now - self._last >= self.interval:
                count, self._count, self._last = self._count, 0, now
        if leftover:
            logger.error("flask-rpcenable: %d more %s failed", leftover, self.what)
        if first:
            logger.error(
                message + " (more failures like it are counted and logged at most every "
                "%g s until one succeeds)",
                *args,
                self.interval,
                exc_info=exc,
            )
        elif count:
            logger.error(
                "flask-rpcenable: %d more %s failed in the last %.0f s; the latest: %s (%s)",
                count,
                self.what,
                self.interval,
                message % args,
                _one_line(exc),
            )

    def recovered(self) -> None:
        """End a run of failures (cheap when there is none)."""
        if self._logger is None:
            return
        with self._lock:
            logger, count, seen = self._logger, self._count, self._seen
            self._logger, self._count = None, 0
        if logger is not None and (count or time.monotonic() - seen < self.interval):
            logger.warning(
                "flask-rpcenable: %s work again (%d more failed since the last report)",
                self.what,
                count,
            )


def _one_line(exc: BaseException | None) -> str:
    if exc is None:
        return "no exception"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class FailureLogs:
    """One :class:`FailureLog` per app and kind of failure (held weakly by app).

    The kind is the description with its particulars (quoted names, ids,
    parenthesised details) taken out, so that "the record of RPC call 'a'"
    and "the record of RPC call 'b'" are one kind, and the first failed job
    record is still logged in full beside the first failed log row.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.interval = FAILURE_LOG_INTERVAL
        self.reset_after_fork()

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._logs: weakref.WeakKeyDictionary[Any, dict[str, FailureLog]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, app: Any, kind: str) -> FailureLog:
        kind = _PARTICULARS.sub("", kind)
        with self._lock:
            logs = self._logs.setdefault(app, {})
            log = logs.get(kind)
            if log is None:
                log = logs[kind] = FailureLog(self.what, self.interval)
            return log

    def failed(self, app: Any, logger: logging.Logger, kind: str, message: str,
               *args: Any) -> None:
        """Log the exception being handled through the app's log of this kind."""
        self.get(app, kind).failed(logger, message, *args)

    def recovered(self, app: Any) -> None:
        """A write of ``app`` worked: end its runs of failures (cheap when there are none)."""
        logs = self._logs.get(app) if self._logs else None
        if logs:
            for log in list(logs.values()):
                log.recovered()


_PARTICULARS = re.compile(r"\s*('[^']*'|\"[^\"]*\"|\([^)]*\)|\b[0-9a-f]{16,}\b)")

#: Bookkeeping writes (log rows, job records, ``last_login``) that failed.
write_failures = FailureLogs("bookkeeping writes")
#: Calls refused because a service we depend on was unavailable.
_outages = FailureLogs("calls")


def reset_after_fork() -> None:
    """Fresh failure logs in a forked child (their locks may be held by a lost thread)."""
    write_failures.reset_after_fork()
    _outages.reset_after_fork()


#: Client libraries whose connection errors mean "a service is unavailable".
_CLIENT_MODULES = ("redis", "pymemcache", "pylibmc", "memcache", "libmc", "cachelib")
_SQLITE_OUTAGE = ("database is locked", "database is busy", "unable to open", "disk i/o error",
                  "database or disk is full")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it came from) says a database or cache is unavailable.

    An outage: a database connection that fails or is lost (SQLAlchemy's
    ``OperationalError``/``InterfaceError`` on a server database, an
    invalidated connection, a full pool), SQLite locked or unreadable, a
    Redis or memcached client that cannot connect or times out. Not an
    outage: a wrong query, a constraint violation, anything else a method
    does wrong.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_outage_here(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_outage_here(exc: BaseException) -> bool:
    if isinstance(exc, (sa.exc.TimeoutError, sa.exc.DisconnectionError)):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if type(exc.orig).__module__.startswith("sqlite3"):
            text = str(exc.orig).lower()
            return any(marker in text for marker in _SQLITE_OUTAGE)
        return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))
    for cls in type(exc).__mro__:
        module = cls.__module__.split(".")[0]
        if module in _CLIENT_MODULES and (
            cls.__name__ in ("ConnectionError", "TimeoutError", "BusyLoadingError")
            or cls.__name__.startswith("MemcacheUnexpectedClose")
            or (cls.__name__ == "MemcacheError" and type(exc) is cls)  # "all servers down"
        ):
            return True
    if isinstance(exc, OSError):  # a socket error raised inside a client library
        tb = exc.__traceback__
        while tb is not None:
            module = str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0]
            if module in _CLIENT_MODULES:
                return True
            tb = tb.tb_next
    return False


def report_outage(logger: logging.Logger, method: str) -> None:
    """Log the exception being handled, which made a call fail with :data:`OUTAGE_MESSAGE`.

    Needs an app context; runs are counted per app.

    The first of a run in full, then a count at most once per
    :data:`FAILURE_LOG_INTERVAL` (see :class:`FailureLog`).
    """
    _outages.failed(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        logger,
        "outage",
        "flask-rpcenable: RPC method %r failed: a database or cache is unavailable",
        method,
    )
