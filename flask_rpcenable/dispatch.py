"""The call pipeline: look up, authenticate, bind, call, time, record.

The dispatcher knows no wire format: a protocol handler gives it a method
name and parameters (a list, or a dict of named ones) and gets back the
result, or an :class:`~flask_rpcenable.errors.RPCError`. This module is the
one place where exceptions become errors: a :class:`~xmlrpc.client.Fault` a
procedure raises keeps its code and string, and any other exception becomes
-32500 with a generic message (the traceback goes to the app's log and the
call's record). Every call, each ``system.multicall`` entry included,
produces exactly one :class:`~flask_rpcenable.calls.CallRecord`, handed to
the recorders (the call log) and to the signals of
:mod:`flask_rpcenable.signals`; when nothing records and no signal has a
receiver, no record is built at all.
"""

from __future__ import annotations

import datetime
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from xmlrpc.client import Fault

from flask import current_app

from . import signals
from .calls import AuthResult, CallContext, CallRecord, Params
from .db import report_write_failure
from .errors import (
    APPLICATION_ERROR,
    APPLICATION_ERROR_MESSAGE,
    METHOD_NOT_FOUND,
    SYSTEM_ERROR,
    RPCError,
)
from .health import OUTAGE_MESSAGE, is_outage, report_outage
from .redact import REDACTED, redact_v1_like
from .registry import Procedure, Registry

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["Authenticator", "Dispatcher", "SystemMethod"]


class Authenticator(Protocol):
    """The interface the auth component implements."""

    #: Names of the leading positional parameters a guarded method takes on
    #: the wire (scheme v1), shown by introspection.
    auth_param_names: Sequence[str]
    #: A sentence appended to the help text of guarded methods.
    help_text: str

    def verify_request(self, ctx: CallContext) -> AuthResult | None:
        """Check request-level credentials on the raw body, before parsing.

        Called only for requests with an ``Authorization`` header. Returns
        ``None`` when that header carries no credentials of this scheme; raises
        :class:`~flask_rpcenable.errors.RPCError` when they are present and wrong.
        """

    def authenticate(self, procedure: Procedure, params: Params, ctx: CallContext) -> AuthResult:
        """Verify a call; raise :class:`~flask_rpcenable.errors.RPCError` (401-406)."""

    def redact(self, params: Params, ctx: CallContext) -> Params:
        """The parameters as they may be logged (auth arguments replaced)."""


Recorder = Callable[[CallRecord], None]


@dataclass(frozen=True)
class SystemMethod:
    """A method a protocol provides itself (``system.listMethods`` ...).

    :param run: ``run(ctx, params)`` returns the result or raises.
    :param loggable: ``loggable(ctx, params)`` returns the parameters as they
        may be recorded (``system.multicall`` redacts its entries' credentials).
    """

    run: Callable[[CallContext, Params], Any]
    loggable: Callable[[CallContext, Params], Params] | None = None


class Dispatcher:
    """Runs calls for one app and one :class:`~flask_rpcenable.RPCEnable` object."""

    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.recorders: list[Recorder] = []
        self.authenticator: Authenticator | None = None

    def call(
        self,
        ctx: CallContext,
        method: str,
        params: Params,
        *,
        system: Mapping[str, SystemMethod] | None = None,
        present: Callable[[Any], Any] | None = None,
        multicall_index: int | None = None,
        wire_code: Callable[[RPCError], int] | None = None,
    ) -> Any:
        """Run one call and record it.

        :param system: the protocol's own methods, looked up before the registry.
        :param present: applied to the result inside the recorded call; its
            return value is what this returns. A protocol passes its encoder,
            so that a result the client cannot get is recorded as the error
            the client gets instead.
        :param multicall_index: the call's position inside a batch.
        :param wire_code: the code the client gets for an error, when the
            protocol sends another than the error's own (JSON-RPC sends
            -32000 for -32500); the record keeps that code, and the error's
            message.
        :returns: the result, or ``present(result)``.
        :raises RPCError: whatever went wrong, already recorded.
        """
        app: Any = None
        if not self.recorders and (not _connected() or not _listened(app := _current_app())):
            # Nothing records or listens (the usual case with the log off):
            # no record to build, no clock to read, no app to look up.
            try:
                result = self._run(app, ctx, method, params, None, system or _NO_SYSTEM)
                return result if present is None else present(result)
            except Exception as exc:
                record = self._record(ctx, method, params, multicall_index)
                raise self._error(app or _current_app(), method, exc, record) from None
        app = app or _current_app()
        record = self._record(ctx, method, params, multicall_index)
        start = time.perf_counter()
        failure: BaseException | None = None
        try:
            result = self._run(app, ctx, method, params, record, system or _NO_SYSTEM)
            out = result if present is None else present(result)
            record.result = result
            return out
        except Exception as exc:
            failure = exc
            error = self._error(app, method, exc, record)
            record.fault_code = error.code if wire_code is None else wire_code(error)
            record.fault_string = error.message
            raise error from None
        finally:
            record.duration_ms = (time.perf_counter() - start) * 1000.0
            self._finish(app, record, failure)

    @staticmethod
    def _record(
        ctx: CallContext, method: str, params: Params, multicall_index: int | None
    ) -> CallRecord:
        """A new record of a call that is starting now."""
        return CallRecord(
            method=method,
            version=ctx.version,
            protocol=ctx.protocol,
            # Whatever the method (one that does not exist, or exists only in
            # another namespace, included): no replayable v1 credentials are
            # kept, nor handed to signal receivers.
            params=redact_v1_like(params),
            started_at=datetime.datetime.now(datetime.timezone.utc),
            remote_addr=ctx.remote_addr,
            request_size=ctx.request_size if multicall_index is None else None,
            # A request signed with scheme v2 names its user for every call
            # in it, public methods included.
            username=ctx.verified.username if ctx.verified is not None else None,
            multicall_index=multicall_index,
        )

    def _run(
        self,
        app: Any,
        ctx: CallContext,
        method: str,
        params: Params,
        record: CallRecord | None,
        system: Mapping[str, SystemMethod],
    ) -> Any:
        """Find, authenticate, bind and run.

        ``record`` is ``None`` when nothing records, and ``app`` then too.
        """
        builtin = system.get(method)
        if builtin is not None:
            if record is not None:
                if builtin.loggable is not None:
                    record.params = _redact_entries(builtin.loggable(ctx, params))
                _send_started(app, record)
            return builtin.run(ctx, params)
        procedure = self.registry.get(method, ctx.version)
        if procedure is None:
            raise RPCError(METHOD_NOT_FOUND, f"Method not found: {method!r}")
        if procedure.requires_auth:
            if record is not None:
                record.params = self.loggable_params(procedure, params, ctx)
            if self.authenticator is None:
                raise RuntimeError("a method requires authentication, which is not set up")
            verified = self.authenticator.authenticate(procedure, params, ctx)
            if record is not None:
                record.username = verified.username
            args, kwargs = procedure.checker.bind(
                method, verified.params, text_scalars=ctx.text_scalars
            )
            args = [verified.user, *args]
        else:
            args, kwargs = procedure.checker.bind(method, params, text_scalars=ctx.text_scalars)
        if record is not None:
            _send_started(app, record)
        if procedure.is_async:
            return (app or _current_app()).ensure_sync(procedure.func)(*args, **kwargs)
        return procedure.func(*args, **kwargs)

    @staticmethod
    def _error(app: Any, method: str, exc: Exception, record: CallRecord) -> RPCError:
        """The one mapping from an exception to the error a client sees."""
        if isinstance(exc, RPCError):
            if exc.__cause__ is not None:  # e.g. a result that cannot be encoded
                app.logger.error(
                    "The result of RPC method %r cannot be sent", method, exc_info=exc.__cause__
                )
            return exc
        if isinstance(exc, Fault):  # a procedure's own fault: unchanged
            return RPCError(exc.faultCode, str(exc.faultString))
        record.traceback = traceback.format_exc()
        if is_outage(exc):  # a database or cache is down: -32400, the client may retry
            report_outage(app.logger, method)
            return RPCError(SYSTEM_ERROR, OUTAGE_MESSAGE)
        app.logger.error("RPC method %r raised an exception", method, exc_info=exc)
        return RPCError(APPLICATION_ERROR, APPLICATION_ERROR_MESSAGE)

    def loggable_params(
        self, procedure: Procedure | None, params: Params, ctx: CallContext
    ) -> Params:
        """The parameters of a call to ``procedure`` as they may be logged.

        Parameters that look like v1 authentication arguments are redacted
        whatever ``procedure`` is (``None`` for a method that does not exist);
        a guarded procedure's are redacted by the authenticator as well.
        """
        params = redact_v1_like(params)
        if procedure is None or not procedure.requires_auth:
            return params
        if self.authenticator is None:
            return [REDACTED] * len(params) if isinstance(params, list) else {}
        return self.authenticator.redact(params, ctx)

    def _finish(self, app: Any, record: CallRecord, failure: BaseException | None) -> None:
        signal = signals.call_finished if failure is None else signals.call_failed
        # Sending is not free, and most apps connect no receiver at all.
        if signal.receivers:
            common = {"method": record.method, "version": record.version, "params": record.params}
            duration = record.duration_ms / 1000.0
            try:
                if failure is None:
                    signal.send(app, result=record.result, duration=duration, **common)
                else:
                    signal.send(app, exception=failure, duration=duration, **common)
            except Exception:  # a broken receiver never changes the call's outcome
                app.logger.exception("a receiver of an RPC signal for %r failed", record.method)
        for recorder in self.recorders:
            try:
                recorder(record)
            except Exception:  # a broken log never fails the call
                report_write_failure(app.logger, f"the record of RPC call {record.method!r}")

    def record_rejected(
        self,
        ctx: CallContext,
        error: RPCError,
        *,
        method: str = "-",
        multicall_index: int | None = None,
    ) -> None:
        """Record a call refused before its method could run.

        Requests refused before a method name was known (not well-formed
        XML, a transport error) are recorded under the method name ``"-"``;
        refused batch entries (malformed, nested) under their method name, if
        any, and their position. Their parameters are not recorded. So
        nothing that reached the endpoint goes unlogged.
        """
        app = _current_app()
        record = CallRecord(
            method=method,
            version=ctx.version,
            protocol=ctx.protocol,
            params=[],
            started_at=datetime.datetime.now(datetime.timezone.utc),
            remote_addr=ctx.remote_addr,
            request_size=ctx.request_size if multicall_index is None else None,
            fault_code=error.code,
            fault_string=error.message,
            multicall_index=multicall_index,
        )
        self._finish(app, record, error)


def _redact_entries(params: Params) -> Params:
    """A batch method's loggable parameters with every entry's v1-like arguments redacted.

    For ``system.multicall`` style parameters (one array of structs with
    ``params``), whether or not the entry's method exists: the protocol's own
    ``loggable`` may only know about the methods it found.
    """
    if not (isinstance(params, list) and len(params) == 1 and isinstance(params[0], list)):
        return redact_v1_like(params)
    entries = []
    for entry in params[0]:
        if isinstance(entry, dict) and "params" in entry:
            redacted = redact_v1_like(entry["params"])
            if redacted is not entry["params"]:
                entry = {**entry, "params": redacted}
        entries.append(entry)
    return [entries]


_NO_SYSTEM: Mapping[str, SystemMethod] = {}


def _current_app() -> Any:
    """The app of the current context (the object behind ``current_app``)."""
    return current_app._get_current_object()  # type: ignore[attr-defined]


def _connected() -> bool:
    """Whether any receiver is connected to a call signal, for any sender (one test each)."""
    return bool(
        signals.call_started.receivers
        or signals.call_finished.receivers
        or signals.call_failed.receivers
    )


def _listened(app: Any) -> bool:
    """Whether a receiver of a call signal listens to ``app`` (or to every sender)."""
    return (
        signals.call_started.has_receivers_for(app)
        or signals.call_finished.has_receivers_for(app)
        or signals.call_failed.has_receivers_for(app)
    )


def _send_started(app: Any, record: CallRecord) -> None:
    """Send :data:`~flask_rpcenable.signals.call_started`, if anyone listens."""
    if signals.call_started.receivers:
        signals.call_started.send(
            app, method=record.method, version=record.version, params=record.params
        )
