"""Call logging: every incoming and outgoing call as a row in the database.

With ``RPCENABLE_LOG_INCOMING`` on, a recorder is added to the dispatcher:
it writes one :class:`IncomingCall` row per :class:`~flask_rpcenable.dispatch.CallRecord`
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
import json
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

from ..db import AtMostEvery, bookkeeping_engine, bookkeeping_write, report_write_failure
from ..redact import (
    DEFAULT_REDACT_KEYS,
    REDACTED,
    cut_text,
    dump_json,
    redact_keys,
    strip_url_credentials,
)
from ..settings import bool_setting, int_setting, retention_days
from ..state import primary_state
from .models import URL_LENGTH, LogModels, utcnow
from .prepared import PreparedInsert

if TYPE_CHECKING:
    from ..dispatch import CallRecord
    from ..state import RPCState

#: Methods whose rows are envelopes of numbered entries (their names only).
_ENVELOPES = frozenset({"system.multicall", "rpc.batch"})

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


class PendingRows:
    """The incoming-call rows of one HTTP request, not written yet, and their budget."""

    def __init__(self, budget: int) -> None:
        self.rows: list[dict[str, Any]] = []
        #: Bytes of params and results still allowed for this request.
        self.left = budget
        #: Rows whose params and result were not stored for lack of budget.
        self.dropped = 0


def over_budget_note(budget: int) -> str:
    """What a row stores instead of its params and result once the budget is used up."""
    return dump_plain(f"[not stored: RPCENABLE_LOG_REQUEST_BUDGET ({budget} bytes) used up]")


def dump_plain(text: str) -> str:
    """``text`` as a JSON string."""
    return json.dumps(text, ensure_ascii=False)


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

    # -- incoming ------------------------------------------------------------

    def record_incoming(self, record: CallRecord) -> None:
        """Add the :class:`IncomingCall` row of ``record`` (a dispatcher recorder).

        Inside a request the row waits for the others of the request (see
        :meth:`flush`); outside one (a call made in an app context) it is
        written at once.
        """
        cut = self.config.max_chars
        # A system.multicall, or a JSON-RPC batch ("rpc.batch"), around its entries.
        envelope = record.method in _ENVELOPES and record.multicall_index is None
        path = request_id = None
        pending: PendingRows | None = None
        if has_request_context():
            path = request.path[:255]
            request_id = g.get("_rpcenable_request_id")
            if request_id is None:
                # 32 random hex digits, like uuid4().hex, at a fraction of its cost.
                request_id = g._rpcenable_request_id = os.urandom(16).hex()
            pending = self._pending()
        params_text, result_text = self._payload(record, envelope, pending)
        row = {
            "created_at": record.started_at,
            "method": record.method[:255],
            "version": record.version,
            "protocol": record.protocol[:16],
            "path": path,
            "params": params_text,
            "result": result_text,
            "ok": record.ok,
            "fault_code": record.fault_code,
            "fault_string": cut_text(record.fault_string, cut),
            "traceback": cut_text(record.traceback, cut, keep_tail=True),
            "duration_ms": float(record.duration_ms),
            "remote_addr": (record.remote_addr or None) and record.remote_addr[:45],
            "username": record.username[:255] if record.username else None,
            "request_size": record.request_size,
            "multicall_index": record.multicall_index,
            "request_id": request_id,
        }
        if pending is None:
            self._insert([row], what=f"the record of RPC call {record.method!r}")
        else:
            pending.rows.append(row)

    def _payload(
        self, record: CallRecord, envelope: bool, pending: PendingRows | None
    ) -> tuple[str, str | None]:
        """The params and result texts of ``record``'s row, within the request's budget."""
        budget = self.config.request_budget
        if pending is not None and pending.left <= 0:
            # Nothing fits any more: do not even serialize.
            pending.dropped += 1
            return over_budget_note(budget), None
        params = summarize_multicall(record.params) if envelope else record.params
        result = record.result
        if envelope and isinstance(result, list):
            # Each sub-call's row holds its result: count them here.
            faults = sum(1 for r in result if isinstance(r, dict) and "result" not in r)
            result = {"results": len(result) - faults, "faults": faults}
        params_text = self.dump(params)
        result_text = self.dump(result) if record.ok else None
        if pending is None:
            return params_text, result_text
        size = len(params_text.encode("utf-8")) + (
            len(result_text.encode("utf-8")) if result_text is not None else 0
        )
        if size > pending.left:
            pending.dropped += 1
            return over_budget_note(budget), None
        pending.left -= size
        return params_text, result_text

    def _pending(self) -> PendingRows:
        """This request's rows to write, set up (with their flush) on first use."""
        key = self._pending_key
        pending: PendingRows | None = g.get(key)
        if pending is None:
            pending = PendingRows(self.config.request_budget)
            setattr(g, key, pending)
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
        what = f"the record of RPC call {rows[0]['method']!r}"
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
        self._insert([row], insert=self._outgoing_insert)

    # -- helpers -------------------------------------------------------------

    def dump(self, value: Any) -> str:
        """``value`` as redacted JSON text, cut at ``RPCENABLE_LOG_MAX_CHARS``."""
        return dump_json(value, self.config.max_chars, self.config.redact_keys)

    def engine(self) -> sa.Engine:
        """Where log rows are written: a pool of their own (see :func:`bookkeeping_engine`)."""
        return bookkeeping_engine(self.db)

    def _insert(
        self, rows: list[dict[str, Any]], what: str = "a log row", insert: sa.Insert | None = None
    ) -> None:
        # Its own connection and transaction: independent of db.session.
        statement = self._incoming_insert if insert is None else insert

        def write(conn: sa.Connection) -> None:
            if len(rows) == 1:
                # The usual case: the statement's SQL, compiled once per
                # dialect, sent as it is (no statement cache lookup).
                self._prepare(statement, conn.dialect, rows[0]).execute(conn, rows[0])
            else:  # several: SQLAlchemy batches them (insertmanyvalues, executemany)
                conn.execute(statement, rows)

        bookkeeping_write(self.db, write, what)
        self._maybe_prune()

    def _prepare(
        self, statement: sa.Insert, dialect: sa.Dialect, row: dict[str, Any]
    ) -> PreparedInsert:
        key = (id(statement), id(dialect))
        prepared = self._prepared.get(key)
        if prepared is None or prepared.dialect is not dialect or prepared.keys != tuple(row):
            prepared = self._prepared[key] = PreparedInsert(statement, dialect, tuple(row))
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
        counts = []
        with self.engine().begin() as conn:
            for model in self.models:
                table = model.__table__
                result = conn.execute(table.delete().where(table.c.created_at < cutoff))
                counts.append(result.rowcount or 0)
        return counts[0], counts[1]


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


def summarize_multicall(params: list[Any]) -> list[Any]:
    """The multicall envelope's parameters as logged: the method names only.

    Each sub-call has its own row with its own (redacted) parameters, so the
    envelope does not repeat them (they may hold auth arguments).
    """
    if len(params) != 1 or not isinstance(params[0], list):
        return [REDACTED] * len(params)
    names = []
    for call in params[0]:
        name = call.get("methodName") if isinstance(call, dict) else None
        names.append(name if isinstance(name, str) else "?")
    return [{"methods": names}]
