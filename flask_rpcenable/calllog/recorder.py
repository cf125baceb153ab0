"""Call logging: every incoming and outgoing call as a row in the database.

With ``RPCENABLE_LOG_INCOMING`` on, a recorder is added to the dispatcher:
it writes one :class:`IncomingCall` row per :class:`~flask_rpcenable.calls.CallRecord`
(each ``system.multicall`` sub-call, the multicall itself, failed
authentications and requests refused before parsing under the method ``"-"``).
With ``RPCENABLE_LOG_OUTGOING`` on, :func:`record_outgoing` (used by the
client) writes :class:`OutgoingCall` rows.

Rows are written in their own connection and transaction, apart from the
app's ``db.session``: a rollback in user code does not lose them, and a failed
write (database down) does not touch the user's session or the call: it goes
to ``app.logger``. The rows of one HTTP request (a ``system.multicall`` and
its entries, say) are collected while it runs and written together, in one
transaction, once the view has returned and before the response is sent.

Each HTTP request may store at most ``RPCENABLE_LOG_REQUEST_BUDGET`` bytes of
parameters and results (UTF-8 JSON text, after redaction and cutting). A row
that does not fit keeps its metadata (method, time, fault, duration ...), but
its parameters and result are replaced by a note saying so: every call still
has its row, and a big multicall cannot write megabytes to the log.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import (
    Flask,
    Response,
    after_this_request,
    current_app,
    g,
    has_app_context,
    has_request_context,
    request,
)

from ..bookkeeping import (
    autocommit_engine,
    bookkeeping_attempts,
    bookkeeping_engine,
    bookkeeping_transaction,
    bookkeeping_write_with,
)
from ..db import AtMostEvery, report_write_failure
from ..redact import (
    DEFAULT_REDACT_KEYS,
    cut_text,
    dump_json,
    redact_keys,
    strip_url_credentials,
)
from ..settings import bool_setting, int_setting, retention_days
from ..state import primary_state
from .models import URL_LENGTH, LogModels, utcnow
from .payload import PendingRows, plain_json, row_texts, summarize_multicall
from .prepared import PreparedInsert

if TYPE_CHECKING:
    from ..calls import CallRecord
    from ..state import RPCState

__all__ = [
    "DEFAULTS",
    "INCOMING_KEYS",
    "CallLogger",
    "LogConfig",
    "get_logger",
    "record_outgoing",
    "summarize_multicall",
]

#: Methods whose rows are envelopes of numbered entries (their names only).
_ENVELOPES = frozenset({"system.multicall", "rpc.batch"})

#: The columns of an incoming-call row, in the order :meth:`CallLogger.record_incoming`
#: builds its tuple.
INCOMING_KEYS = (
    "created_at",
    "method",
    "version",
    "protocol",
    "path",
    "params",
    "result",
    "ok",
    "fault_code",
    "fault_string",
    "traceback",
    "duration_ms",
    "remote_addr",
    "username",
    "request_size",
    "multicall_index",
    "request_id",
)
_METHOD = INCOMING_KEYS.index("method")

#: Settings of this component and their defaults.
DEFAULTS: dict[str, Any] = {
    "RPCENABLE_LOG_INCOMING": False,
    "RPCENABLE_LOG_OUTGOING": False,
    "RPCENABLE_LOG_MAX_CHARS": 10_000,
    "RPCENABLE_LOG_RETENTION_DAYS": 90,
    "RPCENABLE_LOG_REDACT_KEYS": DEFAULT_REDACT_KEYS,
    "RPCENABLE_LOG_REQUEST_BUDGET": 1_000_000,
}

#: How often (seconds) a log write may also delete rows past the retention.
PRUNE_INTERVAL = 3600.0


@dataclass(frozen=True)
class LogConfig:
    """The call-log settings of one app, read once at ``init_app``."""

    log_incoming: bool
    log_outgoing: bool
    max_chars: int
    retention_days: float | None
    redact_keys: tuple[str, ...]
    request_budget: int

    @classmethod
    def from_app(cls, app: Flask) -> LogConfig:
        """Read and check the settings; :class:`RuntimeError` names a wrong one."""
        config = app.config
        return cls(
            log_incoming=bool_setting("RPCENABLE_LOG_INCOMING", config["RPCENABLE_LOG_INCOMING"]),
            log_outgoing=bool_setting("RPCENABLE_LOG_OUTGOING", config["RPCENABLE_LOG_OUTGOING"]),
            max_chars=int_setting(
                "RPCENABLE_LOG_MAX_CHARS", config["RPCENABLE_LOG_MAX_CHARS"], 100
            ),
            retention_days=retention_days(
                "RPCENABLE_LOG_RETENTION_DAYS", config["RPCENABLE_LOG_RETENTION_DAYS"]
            ),
            redact_keys=redact_keys(config["RPCENABLE_LOG_REDACT_KEYS"]),
            request_budget=int_setting(
                "RPCENABLE_LOG_REQUEST_BUDGET", config["RPCENABLE_LOG_REQUEST_BUDGET"], 0
            ),
        )


class CallLogger:
    """Writes log rows for one :class:`~flask_rpcenable.extension.RPCState`."""

    def __init__(self, state: RPCState, config: LogConfig, models: LogModels) -> None:
        self.db = state.db
        self.config = config
        self.models = models
        self.prune_gate = AtMostEvery(PRUNE_INTERVAL)
        # Used on every logged call: built once here (a statement built
        # anew for each row costs SQLAlchemy noticeably more to execute).
        self._incoming_insert = models.IncomingCall.__table__.insert()
        self._outgoing_insert = models.OutgoingCall.__table__.insert()
        self._prepared: dict[tuple[int, int], PreparedInsert] = {}
        #: Where this logger keeps a request's pending rows in ``flask.g``.
        self._pending_key = f"_rpcenable_log_rows_{id(self)}"
        self._engine: sa.Engine | None = None

    # -- incoming ------------------------------------------------------------

    def record_incoming(self, record: CallRecord) -> None:
        """Add the :class:`IncomingCall` row of ``record`` (a dispatcher recorder).

        Inside a request the row waits for the others of the request (see
        :meth:`flush`); outside one (a call made in an app context) it is
        written at once.
        """
        cut = self.config.max_chars
        # A system.multicall, or a JSON-RPC batch ("rpc.batch"), around its entries.
        envelope = record.multicall_index is None and record.method in _ENVELOPES
        pending = self._pending() if has_request_context() else None
        params_text, result_text = row_texts(
            record, envelope, pending, self.dump, self.config.request_budget
        )
        fault_string, trace = record.fault_string, record.traceback
        remote_addr, username = record.remote_addr, record.username
        row = (  # in the order of INCOMING_KEYS
            record.started_at,
            record.method[:255],
            record.version,
            record.protocol[:16],
            None if pending is None else pending.path,
            params_text,
            result_text,
            record.fault_code is None,  # ok
            record.fault_code,
            None if fault_string is None else cut_text(fault_string, cut),
            None if trace is None else cut_text(trace, cut, keep_tail=True),
            float(record.duration_ms),
            remote_addr[:45] if remote_addr else None,
            username[:255] if username else None,
            record.request_size,
            record.multicall_index,
            None if pending is None else pending.request_id,
        )
        if pending is None:
            self._insert([row], what=f"the record of RPC call {record.method!r}")
        else:
            pending.rows.append(row)

    def _pending(self) -> PendingRows:
        """This request's rows to write, set up (with their flush) on first use."""
        key = self._pending_key
        # Once through the proxy (this runs for every row), and get(), not
        # getattr(): a missing attribute of flask.g costs an exception.
        app_globals = g._get_current_object()
        pending: PendingRows | None = app_globals.get(key)
        if pending is None:
            request_id = app_globals.get("_rpcenable_request_id")
            if request_id is None:
                # 32 random hex digits, like uuid4().hex, at a fraction of its cost.
                request_id = app_globals._rpcenable_request_id = os.urandom(16).hex()
            pending = PendingRows(self.config.request_budget, request.path[:255], request_id)
            setattr(app_globals, key, pending)
            after_this_request(self.flush)
        return pending

    def flush(self, response: Response | None = None) -> Response | None:
        """Write the request's rows in one transaction (an ``after_this_request`` hook).

        Runs when the view has returned, before the response is sent; the
        teardown of the request runs it again for rows a failed hook left.
        """
        pending: PendingRows | None = g.pop(self._pending_key, None)
        if pending is None or not pending.rows:
            return response
        rows = pending.rows
        what = f"the record of RPC call {rows[0][_METHOD]!r}"
        if len(rows) > 1:
            what += f" and {len(rows) - 1} more of the same request"
        try:
            self._insert(rows, what=what)
        except Exception:  # a broken log never fails the call
            report_write_failure(current_app.logger, what)
        return response

    def flush_on_teardown(self, exc: BaseException | None = None) -> None:
        """Write rows still waiting when the request ends (a ``teardown_request`` hook)."""
        self.flush()

    # -- outgoing ------------------------------------------------------------

    def write_outgoing(self, row: dict[str, Any]) -> None:
        """Write one :class:`OutgoingCall` row (built by :func:`record_outgoing`)."""
        self._insert([tuple(row.values())], insert=self._outgoing_insert, keys=tuple(row))

    # -- helpers -------------------------------------------------------------

    def dump(self, value: Any) -> str:
        """``value`` as redacted JSON text, cut at ``RPCENABLE_LOG_MAX_CHARS``."""
        max_chars = self.config.max_chars
        text = plain_json(value, max_chars)
        if text is None:
            text = dump_json(value, max_chars, self.config.redact_keys)
        return text

    def engine(self) -> sa.Engine:
        """Where log rows are written: a pool of their own (see :func:`bookkeeping_engine`).

        Looked up once: it belongs to this app's engine for the app's life.
        """
        engine = self._engine
        if engine is None:
            engine = self._engine = bookkeeping_engine(self.db)
        return engine

    def _insert(
        self,
        rows: list[tuple[Any, ...]],
        what: str = "a log row",
        insert: sa.Insert | None = None,
        keys: tuple[str, ...] = INCOMING_KEYS,
    ) -> None:
        """Write ``rows`` (tuples in the order of ``keys``) in one transaction of their own."""
        statement = self._incoming_insert if insert is None else insert
        engine = self.engine()
        prepared = self._prepare(statement, engine.dialect, keys)
        bookkeeping_write_with(self.db, lambda: self._write_rows(engine, prepared, rows), what)
        self._maybe_prune()

    def _write_rows(
        self, engine: sa.Engine, prepared: PreparedInsert, rows: list[tuple[Any, ...]]
    ) -> None:
        """Send ``rows`` atomically (one transaction or one statement); retry once if worth it."""
        if prepared.local:
            parameters = prepared.parameters(rows)
            bookkeeping_attempts(self.db, lambda e: prepared.write_local(e, parameters), engine)
        elif len(rows) == 1:
            # One INSERT is atomic on its own: in autocommit mode no BEGIN and
            # COMMIT go to the server around it.
            bookkeeping_attempts(
                self.db, lambda e: prepared.write_alone(e, rows), autocommit_engine(engine)
            )
        else:
            bookkeeping_transaction(self.db, lambda conn: prepared.execute(conn, rows))

    def _prepare(
        self, statement: sa.Insert, dialect: sa.Dialect, keys: tuple[str, ...]
    ) -> PreparedInsert:
        key = (id(statement), id(dialect))
        prepared = self._prepared.get(key)
        if prepared is None or prepared.dialect is not dialect or prepared.keys != keys:
            prepared = self._prepared[key] = PreparedInsert(statement, dialect, keys)
        return prepared

    def _maybe_prune(self) -> None:
        days = self.config.retention_days
        if days is None or not self.prune_gate.due():
            return
        try:
            self.prune(days)
        except Exception:
            report_write_failure(current_app.logger, "pruning of the call log")

    def prune(self, days: float) -> tuple[int, int]:
        """Delete rows older than ``days``; return (incoming, outgoing) counts deleted."""
        cutoff = utcnow() - datetime.timedelta(days=days)

        def delete(conn: sa.Connection) -> list[int]:
            return [
                conn.execute(table.delete().where(table.c.created_at < cutoff)).rowcount or 0
                for table in (model.__table__ for model in self.models)
            ]

        incoming, outgoing = bookkeeping_transaction(self.db, delete)
        return incoming, outgoing


def get_logger(app: Flask | None = None) -> CallLogger | None:
    """The :class:`CallLogger` of the app's primary :class:`RPCEnable`, if any."""
    if app is None:
        if not has_app_context():
            return None
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = primary_state(app)
    return state.calllog if state is not None else None


def record_outgoing(
    *,
    url: str,
    method: str,
    params: list[Any],
    response: Any = None,
    fault_code: int | None = None,
    fault_string: str | None = None,
    exception: str | None = None,
    duration_ms: float,
) -> None:
    """Log one outgoing call, when ``RPCENABLE_LOG_OUTGOING`` is on.

    A no-op outside an app context or on an app without flask-rpcenable.
    Credentials in the URL are removed and parameters redacted (struct keys
    such as ``api_key``, ``password``, ``secret``, ``token``, ``signature``);
    the caller replaces known positional auth arguments with ``"***"``
    itself. Never raises: a failure goes to ``app.logger``.

    :param url: the endpoint called.
    :param method: the remote method name.
    :param params: the parameters sent.
    :param response: the result, for a success.
    :param fault_code: the fault code, for an XML-RPC fault.
    :param fault_string: the fault string, for an XML-RPC fault.
    :param exception: a traceback or message, for a transport or other error.
    :param duration_ms: how long the call took, in milliseconds.
    """
    try:
        logger = get_logger()
        if logger is None or not logger.config.log_outgoing:
            return
        cut = logger.config.max_chars
        ok = fault_code is None and exception is None
        logger.write_outgoing(
            {
                "created_at": utcnow(),
                "url": strip_url_credentials(url, logger.config.redact_keys)[:URL_LENGTH],
                "method": str(method)[:255],
                "params": logger.dump(params),
                "response": logger.dump(response) if ok else None,
                "ok": ok,
                "fault_code": fault_code,
                "fault_string": cut_text(fault_string, cut),
                "exception": cut_text(exception, cut, keep_tail=True),
                "duration_ms": float(duration_ms),
            }
        )
    except Exception:
        # Without an app logger to report to, stay silent.
        with contextlib.suppress(Exception):
            report_write_failure(current_app.logger, f"the log row of outgoing call {method!r}")
