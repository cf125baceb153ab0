"""The call pipeline: look up, authenticate, check, call, time, record.

The dispatcher knows nothing of XML or HTTP: it takes a method name and a
list of parameters and returns a result or raises :class:`Fault`. Every call,
including each ``system.multicall`` sub-call, produces exactly one
:class:`CallRecord` handed to the recorders (the database log, for example)
and the blinker signals of :mod:`flask_rpcenable.signals`.
"""

from __future__ import annotations

import datetime
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from flask import current_app

from . import signals
from .db import report_write_failure
from .faults import (
    APPLICATION_ERROR,
    APPLICATION_ERROR_MESSAGE,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    Fault,
)
from .params import V1_AUTH_PARAMS
from .registry import Procedure, Registry

if TYPE_CHECKING:
    from .settings import Settings

REDACTED = "***"


@dataclass
class AuthResult:
    """What an authenticator hands back for a verified call."""

    user: Any
    username: str
    #: The parameters left for the function once the auth ones are taken off.
    params: list[Any]


@dataclass
class CallContext:
    """What the transport knows about the request a call came in."""

    version: int | None
    protocol: str = "xmlrpc"
    remote_addr: str | None = None
    request_size: int | None = None
    http_method: str = "POST"
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The raw (decompressed) body, for signatures that cover it.
    body: bytes = b""
    #: Set when the request was authenticated as a whole, before parsing
    #: (scheme v2: a signed ``Authorization`` header).
    verified: AuthResult | None = None
    #: The transport's result encoder (a result in, what goes on the wire
    #: out; raises :class:`Fault` when the result cannot be sent). The
    #: dispatcher applies it inside every call, multicall sub-calls
    #: included, so that a result the client never gets is recorded as the
    #: fault the client gets instead.
    encoder: Callable[[Any], Any] | None = None


@dataclass
class CallRecord:
    """Everything known about one finished call, for logs and signals."""

    method: str
    version: int | None
    protocol: str
    params: list[Any]
    started_at: datetime.datetime
    remote_addr: str | None = None
    request_size: int | None = None
    username: str | None = None
    result: Any = None
    fault_code: int | None = None
    fault_string: str | None = None
    traceback: str | None = None
    duration_ms: float = 0.0
    #: Position inside a ``system.multicall``; ``None`` for a top-level call.
    multicall_index: int | None = None

    @property
    def ok(self) -> bool:
        return self.fault_code is None


class Authenticator(Protocol):
    """The interface the auth component implements."""

    #: Names of the leading wire parameters, shown by ``system.methodSignature``.
    signature_prefix: Sequence[str]
    #: A sentence appended to ``system.methodHelp`` of guarded methods.
    help_text: str

    def verify_request(self, ctx: CallContext) -> AuthResult | None:
        """Check request-level credentials on the raw body, before parsing.

        Returns ``None`` when the request carries none; raises :class:`Fault`
        when they are present and wrong.
        """

    def authenticate(self, procedure: Procedure, params: list[Any], ctx: CallContext) -> AuthResult:
        """Verify a call; raise :class:`Fault` (401-406) when it fails."""

    def redact(self, params: list[Any], ctx: CallContext) -> list[Any]:
        """The parameters as they may be logged (auth arguments replaced)."""


Recorder = Callable[[CallRecord], None]


class Dispatcher:
    """Runs calls for one app and one :class:`RPCEnable` object."""

    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.recorders: list[Recorder] = []
        self.authenticator: Authenticator | None = None
        self._system: dict[str, Callable[[CallContext, list[Any]], Any]] = {
            "system.listMethods": self._list_methods,
            "system.methodHelp": self._method_help,
            "system.methodSignature": self._method_signature,
            "system.multicall": self._multicall,
        }

    # -- the pipeline --------------------------------------------------------

    def call(
        self,
        ctx: CallContext,
        method: str,
        params: list[Any],
        *,
        multicall_index: int | None = None,
    ) -> Any:
        """Run one call and record it; return the result or raise :class:`Fault`.

        When ``ctx.encoder`` is set, the result is encoded inside the
        recorded call and the *encoded* value is returned (for a multicall
        sub-call the result itself is returned, once it is known to encode).
        """
        return self._call(ctx, method, params, multicall_index)[1]

    def _call(
        self, ctx: CallContext, method: str, params: list[Any], multicall_index: int | None
    ) -> tuple[Any, Any]:
        """Run and record one call; return ``(result, what call() returns)``."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        record = CallRecord(
            method=method,
            version=ctx.version,
            protocol=ctx.protocol,
            params=params,
            started_at=datetime.datetime.now(datetime.timezone.utc),
            remote_addr=ctx.remote_addr,
            request_size=ctx.request_size if multicall_index is None else None,
            # A request signed with scheme v2 names its user for every call
            # in it, public methods included.
            username=ctx.verified.username if ctx.verified is not None else None,
            multicall_index=multicall_index,
        )
        start = time.perf_counter()
        error: BaseException | None = None
        try:
            result = self._run(ctx, method, params, record, app)
            out = result
            if ctx.encoder is not None:
                try:
                    encoded = ctx.encoder(result)
                except Fault as fault:
                    if fault.__cause__ is not None:
                        app.logger.error(
                            "The result of RPC method %r cannot be sent",
                            method,
                            exc_info=fault.__cause__,
                        )
                    raise
                if multicall_index is None:
                    out = encoded
            record.result = result
            return result, out
        except Fault as fault:
            error = fault
            record.fault_code, record.fault_string = fault.faultCode, str(fault.faultString)
            raise
        except Exception as exc:
            error = exc
            record.traceback = traceback.format_exc()
            app.logger.error("RPC method %r raised an exception", method, exc_info=exc)
            record.fault_code, record.fault_string = APPLICATION_ERROR, APPLICATION_ERROR_MESSAGE
            raise Fault(APPLICATION_ERROR, APPLICATION_ERROR_MESSAGE) from None
        finally:
            record.duration_ms = (time.perf_counter() - start) * 1000.0
            self._finish(app, record, error)

    def _run(
        self, ctx: CallContext, method: str, params: list[Any], record: CallRecord, app: Any
    ) -> Any:
        system = self._system.get(method)
        if system is not None:
            if method == "system.multicall":
                record.params = self._redact_multicall(ctx, params)
            _send_started(app, record)
            return system(ctx, params)
        procedure = self.registry.get(method, ctx.version)
        if procedure is None:
            raise Fault(METHOD_NOT_FOUND, f"Method not found: {method!r}")
        args: list[Any]
        if procedure.requires_auth:
            record.params = self._redact(procedure, params, ctx)
            if self.authenticator is None:
                raise Fault(INTERNAL_ERROR, "Internal error: authentication is not set up")
            verified = self.authenticator.authenticate(procedure, params, ctx)
            record.username = verified.username
            args = [verified.user, *procedure.checker.bind(method, verified.params)]
        else:
            args = procedure.checker.bind(method, params)
        _send_started(app, record)
        if procedure.is_async:
            return app.ensure_sync(procedure.func)(*args)
        return procedure.func(*args)

    def _redact(self, procedure: Procedure, params: list[Any], ctx: CallContext) -> list[Any]:
        """The parameters of a call to ``procedure`` as they may be logged."""
        if not procedure.requires_auth:
            return params
        if self.authenticator is None:
            count = min(len(params), len(V1_AUTH_PARAMS))
            return [REDACTED] * count + list(params[count:])
        return self.authenticator.redact(params, ctx)

    def _redact_multicall(self, ctx: CallContext, params: list[Any]) -> list[Any]:
        """A multicall's parameters with each guarded sub-call's auth arguments redacted."""
        if len(params) != 1 or not isinstance(params[0], list):
            return params
        calls = []
        for call in params[0]:
            if isinstance(call, dict) and isinstance(call.get("methodName"), str):
                procedure = self.registry.get(call["methodName"], ctx.version)
                sub_params = call.get("params")
                if procedure is not None and isinstance(sub_params, list):
                    call = {**call, "params": self._redact(procedure, sub_params, ctx)}
            calls.append(call)
        return [calls]

    def _finish(self, app: Any, record: CallRecord, error: BaseException | None) -> None:
        signal = signals.call_finished if error is None else signals.call_failed
        # Sending is not free, and most apps connect no receiver at all.
        if signal.receivers:
            common = {"method": record.method, "version": record.version, "params": record.params}
            duration = record.duration_ms / 1000.0
            try:
                if error is None:
                    signal.send(app, result=record.result, duration=duration, **common)
                else:
                    signal.send(app, exception=error, duration=duration, **common)
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
        fault: Fault,
        *,
        method: str = "-",
        multicall_index: int | None = None,
    ) -> None:
        """Record a call refused before its method could run.

        Requests refused before a method name was known (not well-formed
        XML, a failed scheme-v2 signature) are recorded under the method name
        ``"-"``; refused ``system.multicall`` entries (malformed, nested)
        under their method name, if any, and their position. Their
        parameters are not recorded. So nothing that reached the endpoint
        goes unlogged.
        """
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        record = CallRecord(
            method=method,
            version=ctx.version,
            protocol=ctx.protocol,
            params=[],
            started_at=datetime.datetime.now(datetime.timezone.utc),
            remote_addr=ctx.remote_addr,
            request_size=ctx.request_size if multicall_index is None else None,
            fault_code=fault.faultCode,
            fault_string=str(fault.faultString),
            multicall_index=multicall_index,
        )
        self._finish(app, record, fault)

    # -- system.* ------------------------------------------------------------

    def _lookup(self, ctx: CallContext, params: list[Any], what: str) -> Procedure | None:
        if len(params) != 1 or not isinstance(params[0], str):
            raise Fault(INVALID_PARAMS, f"system.{what}(name: str): expected one method name")
        name = params[0]
        if name in self._system:
            return None
        procedure = self.registry.get(name, ctx.version)
        if procedure is None:
            raise Fault(METHOD_NOT_FOUND, f"Method not found: {name!r}")
        return procedure

    def _list_methods(self, ctx: CallContext, params: list[Any]) -> list[str]:
        if params:
            raise Fault(INVALID_PARAMS, "system.listMethods(): expected no parameters")
        names = [p.name for p in self.registry.methods(ctx.version)]
        return sorted([*names, *self._system])

    def _method_help(self, ctx: CallContext, params: list[Any]) -> str:
        procedure = self._lookup(ctx, params, "methodHelp")
        if procedure is None:
            return _SYSTEM_HELP[params[0]]
        text = procedure.doc
        if procedure.requires_auth and self.authenticator is not None:
            text = f"{text}\n\n{self.authenticator.help_text}".strip()
        return text

    def _method_signature(self, ctx: CallContext, params: list[Any]) -> list[list[str]]:
        procedure = self._lookup(ctx, params, "methodSignature")
        if procedure is None:
            return _SYSTEM_SIGNATURES[params[0]]
        prefix: Sequence[str] = ()
        if procedure.requires_auth and self.authenticator is not None:
            prefix = self.authenticator.signature_prefix
        return procedure.checker.signatures(prefix)

    def _multicall(self, ctx: CallContext, params: list[Any]) -> list[Any]:
        if len(params) != 1 or not isinstance(params[0], list):
            raise Fault(INVALID_PARAMS, "system.multicall(calls: array): expected one array")
        calls = params[0]
        limit = self.settings.max_multicall
        if len(calls) > limit:
            raise Fault(
                INVALID_PARAMS, f"system.multicall: at most {limit} calls per request"
            )
        results: list[Any] = []
        for index, call in enumerate(calls):
            name = call.get("methodName") if isinstance(call, dict) else None
            try:
                if (
                    not isinstance(name, str)
                    or not isinstance(call.get("params", []), list)
                ):
                    raise Fault(
                        INVALID_REQUEST,
                        "each multicall entry is a struct with 'methodName' and 'params'",
                    )
                if name == "system.multicall":
                    raise Fault(INVALID_REQUEST, "system.multicall cannot be nested")
            except Fault as refusal:
                shown = name[:255] if isinstance(name, str) and name else "-"
                self.record_rejected(ctx, refusal, method=shown, multicall_index=index)
                results.append({"faultCode": refusal.faultCode, "faultString": refusal.faultString})
                continue
            try:
                result, _ = self._call(ctx, name, call.get("params", []), index)
                results.append([result])
            except Fault as fault:
                results.append({"faultCode": fault.faultCode, "faultString": fault.faultString})
        return results


def _send_started(app: Any, record: CallRecord) -> None:
    """Send :data:`~flask_rpcenable.signals.call_started`, if anyone listens."""
    if signals.call_started.receivers:
        signals.call_started.send(
            app, method=record.method, version=record.version, params=record.params
        )


_SYSTEM_HELP = {
    "system.listMethods": "Return the names of the methods of this namespace.",
    "system.methodHelp": "Return the documentation of a method.",
    "system.methodSignature": (
        "Return the signatures of a method: lists of the return type followed by the "
        "parameter types."
    ),
    "system.multicall": (
        "Run several calls in one request. Takes an array of structs with 'methodName' and "
        "'params'; returns an array with [result] for each success and a fault struct for "
        "each failure, in order. Calls cannot be nested."
    ),
}
_SYSTEM_SIGNATURES = {
    "system.listMethods": [["array"]],
    "system.methodHelp": [["string", "string"]],
    "system.methodSignature": [["array", "string"]],
    "system.multicall": [["array", "array"]],
}
