"""Call logging: every incoming and outgoing call as a row in the database.

With ``RPCENABLE_LOG_INCOMING`` on, a recorder is added to the dispatcher:
it writes one :class:`IncomingCall` row per :class:`~flask_rpcenable.dispatch.CallRecord`
(each ``system.multicall`` sub-call, the multicall itself, failed
authentications and requests refused before parsing under the method ``"-"``).
With ``RPCENABLE_LOG_OUTGOING`` on, :func:`record_outgoing` (used by the
client) writes :class:`OutgoingCall` rows.

Rows are written in their own connection and transaction, apart from the
app's ``db.session``, and committed before the response is sent: a rollback
in user code does not lose them, and a failed write (database down) does not
touch the user's session or the call: it goes to ``app.logger``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import functools
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from xmlrpc.client import Binary, DateTime

import sqlalchemy as sa
from flask import (
    Flask,
    current_app,
    g,
    has_app_context,
    has_request_context,
    request,
)

from ..db import AtMostEvery, bookkeeping_engine, bookkeeping_write, report_write_failure
from ..redact import DEFAULT_REDACT_KEYS, norm_key, redact_keys
from ..settings import bool_setting, int_setting, retention_days
from ..state import primary_state
from .models import URL_LENGTH, LogModels, utcnow

if TYPE_CHECKING:
    from ..dispatch import CallRecord
    from ..state import RPCState

#: Settings of this component and their defaults.
DEFAULTS: dict[str, Any] = {
    "RPCENABLE_LOG_INCOMING": False,
    "RPCENABLE_LOG_OUTGOING": False,
    "RPCENABLE_LOG_MAX_CHARS": 10_000,
    "RPCENABLE_LOG_RETENTION_DAYS": 90,
    "RPCENABLE_LOG_REDACT_KEYS": DEFAULT_REDACT_KEYS,
}

REDACTED = "***"
#: What :func:`json.dumps` with ``ensure_ascii=False`` uses, made once.
_JSON = json.JSONEncoder(ensure_ascii=False)
#: How often (seconds) a log write may also delete rows past the retention.
PRUNE_INTERVAL = 3600.0
_MAX_DEPTH = 32


class LogConfig:
    """The call-log settings of one app, read once at ``init_app``."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        self.log_incoming = bool_setting(
            "RPCENABLE_LOG_INCOMING", config["RPCENABLE_LOG_INCOMING"]
        )
        self.log_outgoing = bool_setting(
            "RPCENABLE_LOG_OUTGOING", config["RPCENABLE_LOG_OUTGOING"]
        )
        self.max_chars: int = int_setting(
            "RPCENABLE_LOG_MAX_CHARS", config["RPCENABLE_LOG_MAX_CHARS"], 100
        )
        self.retention_days: float | None = retention_days(
            "RPCENABLE_LOG_RETENTION_DAYS", config["RPCENABLE_LOG_RETENTION_DAYS"]
        )
        self.redact_keys: tuple[str, ...] = redact_keys(
            config["RPCENABLE_LOG_REDACT_KEYS"]
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

    # -- incoming ------------------------------------------------------------

    def record_incoming(self, record: CallRecord) -> None:
        """Write one :class:`IncomingCall` row for ``record`` (a dispatcher recorder)."""
        cut = self.config.max_chars
        envelope = record.method == "system.multicall" and record.multicall_index is None
        params = summarize_multicall(record.params) if envelope else record.params
        result = record.result
        if envelope and isinstance(result, list):
            # Each sub-call's row holds its result: count them here.
            faults = sum(1 for r in result if isinstance(r, dict))
            result = {"results": len(result) - faults, "faults": faults}
        path = request_id = None
        if has_request_context():
            path = request.path[:255]
            request_id = g.get("_rpcenable_request_id")
            if request_id is None:
                request_id = g._rpcenable_request_id = uuid.uuid4().hex
        row = {
            "created_at": record.started_at,
            "method": record.method[:255],
            "version": record.version,
            "protocol": record.protocol[:16],
            "path": path,
            "params": self.dump(params),
            "result": self.dump(result) if record.ok else None,
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
        self._insert(self._incoming_insert, row, what=f"the log row of {record.method!r}")

    # -- outgoing ------------------------------------------------------------

    def write_outgoing(self, row: dict[str, Any]) -> None:
        """Write one :class:`OutgoingCall` row (built by :func:`record_outgoing`)."""
        self._insert(self._outgoing_insert, row)

    # -- helpers -------------------------------------------------------------

    def dump(self, value: Any) -> str:
        """``value`` as redacted JSON text, cut at ``RPCENABLE_LOG_MAX_CHARS``."""
        return dump_json(value, self.config.max_chars, self.config.redact_keys)

    def engine(self) -> sa.Engine:
        """Where log rows are written: a pool of their own (see :func:`bookkeeping_engine`)."""
        return bookkeeping_engine(self.db)

    def _insert(self, insert: sa.Insert, row: dict[str, Any], what: str = "a log row") -> None:
        # Its own connection and transaction: independent of db.session.
        bookkeeping_write(self.db, lambda conn: conn.execute(insert, row), what)
        self._maybe_prune()

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


# -- redaction and serialization ---------------------------------------------


def is_secret_key(key: Any, redact_keys: Iterable[str]) -> bool:
    """Whether a struct key names a secret (``api_key``, ``X-Auth-Token`` ...)."""
    norm = norm_key(key)
    return any(part in norm for part in redact_keys)


#: Struct keys up to this length have their :func:`is_secret_key` answer
#: remembered (the same few come back on every call); longer ones are rare
#: and would make the memory the cache holds depend on what clients send.
_REMEMBERED_KEY_MAX = 64
_is_secret_short_key = functools.lru_cache(maxsize=1024)(is_secret_key)


def _is_secret_name(name: str, redact_keys: tuple[str, ...]) -> bool:
    if len(name) <= _REMEMBERED_KEY_MAX and isinstance(redact_keys, tuple):
        return _is_secret_short_key(name, redact_keys)
    return is_secret_key(name, redact_keys)


def sanitize(value: Any, max_chars: int, redact_keys: tuple[str, ...], depth: int = 0) -> Any:
    """A JSON-ready copy of ``value``: secrets redacted, long parts shortened.

    Bytes become a short base64 summary, datetimes ISO 8601 text; strings and
    arrays longer than ``max_chars`` are cut (the whole text is cut again
    after serialization).
    """
    if depth > _MAX_DEPTH:
        return "<nested too deep>"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        if len(value) <= max_chars:
            return value
        return f"{value[:max_chars]}... [{len(value)} characters]"
    if isinstance(value, Binary):
        value = value.data
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        head = base64.b64encode(data[:48]).decode("ascii")
        return f"<binary {len(data)} bytes, base64: {head}{'...' if len(data) > 48 else ''}>"
    if isinstance(value, DateTime):
        text = value.value
        try:
            return datetime.datetime.strptime(text, "%Y%m%dT%H:%M:%S").isoformat()
        except ValueError:
            return text
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= max_chars:
                out["..."] = f"{len(value) - i} more"
                break
            name = str(key)
            out[name] = (
                REDACTED
                if _is_secret_name(name, redact_keys)
                else sanitize(item, max_chars, redact_keys, depth + 1)
            )
        return out
    if isinstance(value, (list, tuple)):
        items = [sanitize(v, max_chars, redact_keys, depth + 1) for v in value[:max_chars]]
        if len(value) > max_chars:
            items.append(f"... {len(value) - max_chars} more")
        return items
    return repr(value)[:max_chars]


def dump_json(value: Any, max_chars: int, redact_keys: tuple[str, ...]) -> str:
    """``value`` as redacted JSON text of at most about ``max_chars`` characters."""
    text = _JSON.encode(sanitize(value, max_chars, redact_keys))
    return cut_text(text, max_chars) or ""


def cut_text(text: str | None, max_chars: int, *, keep_tail: bool = False) -> str | None:
    """``text`` cut to ``max_chars``, saying so; tracebacks keep their end."""
    if text is None:
        return None
    if len(text) <= max_chars:
        return text
    if keep_tail:
        prefix = f"[cut: {len(text)} characters in all]\n..."
        return prefix + text[len(text) - max(max_chars - len(prefix), 0) :]
    suffix = f"... [cut: {len(text)} characters in all]"
    return text[: max(max_chars - len(suffix), 0)] + suffix


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


def strip_url_credentials(url: str, redact_keys: Iterable[str] = DEFAULTS[
    "RPCENABLE_LOG_REDACT_KEYS"
]) -> str:
    """``url`` without ``user:password@`` and with secret query values redacted."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        keys = tuple(norm_key(k) for k in redact_keys)
        query = urlencode(
            [(k, REDACTED if is_secret_key(k, keys) else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
