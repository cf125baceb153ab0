"""JSON-RPC 2.0 on the endpoint: single calls, batches, notifications.

Every response is ``application/json`` with HTTP 200, errors included; a
notification, or a batch of notifications only, is answered with HTTP 204
and no body. Calls go through the same dispatcher as XML-RPC's: the same
registry, parameter checks (by position or by name), authentication, call
log and signals. The ``system.*`` introspection methods answer here too;
``system.multicall`` stays XML-RPC's (JSON-RPC has batches), and
``rpc.discover`` returns the namespace's OpenRPC document.

Errors: the specification's codes keep its messages ("Invalid params"...)
with our explanation, where there is one worth giving, as ``data``. The
dispatcher's "application error" (an exception the procedure did not mean
to raise) becomes -32000 "Server error" with nothing of the exception; a
``Fault`` a procedure raises keeps its code and its string as ``message``,
and so do the authentication errors (401, 402, 403, 406) and -32400.

A batch is one recorded call, :data:`BATCH`, its envelope: each member is
recorded like a ``system.multicall`` entry, with its position.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Response

from ..calls import CallContext, Params
from ..dispatch import SystemMethod
from ..errors import (
    APPLICATION_ERROR,
    APPLICATION_ERROR_MESSAGE,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_WELL_FORMED,
    RPCError,
)
from .base import ProtocolHandler
from .introspection import introspection_methods
from .jsonrpc_codec import JSONRefused, encode_value, loads_bounded
from .openrpc import DISCOVER, discover_method

if TYPE_CHECKING:
    from ..state import RPCState

__all__ = ["BATCH", "SERVER_ERROR", "JSONRPCHandler"]

#: The method name a batch's envelope is recorded under.
BATCH = "rpc.batch"
#: The code of an unexpected exception in a procedure.
SERVER_ERROR = -32000
SERVER_ERROR_MESSAGE = "Server error"
SYSTEM_NAMES = ("system.listMethods", "system.methodHelp", "system.methodSignature")
CONTENT_TYPE = "application/json"

#: The specification's messages for its own codes.
_MESSAGES = {
    NOT_WELL_FORMED: "Parse error",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
}
#: Codes whose detailed message goes along as ``data``.
_EXPLAINED = frozenset({INVALID_PARAMS, INTERNAL_ERROR})
_MISSING = object()
_BATCH_START = re.compile(rb"[ \t\r\n]*\[")
_PARSE_ERROR = '{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}'


class _Refusal(RPCError):
    """A request refused by this handler, with an explanation to send as ``data``."""

    def __init__(self, code: int, message: str, *, data: str | None = None) -> None:
        super().__init__(code, message)
        self.data = data


class JSONRPCHandler(ProtocolHandler):
    """JSON-RPC 2.0 requests of one endpoint."""

    name = "jsonrpc"
    media_types = ("application/json",)
    first_bytes = b"{["
    text_scalars = True  # JSON has no date or binary type

    def __init__(self, state: RPCState) -> None:
        super().__init__(state)
        self.system: dict[str, SystemMethod] = {
            **introspection_methods(self.dispatcher, SYSTEM_NAMES),
            DISCOVER: discover_method(state, SYSTEM_NAMES),
        }
        self.batch_system = {
            **self.system,
            BATCH: SystemMethod(self._run_batch, loggable=_batch_summary),
        }
        # RPCENABLE_MAX_DEPTH counts the nesting of the values sent; the
        # request object and its params (and a batch's array) come on top.
        self.max_depth = self.settings.max_depth + 2

    # -- the request ---------------------------------------------------------------

    def respond(self, ctx: CallContext, body: bytes) -> Response:
        limit = self.max_depth + (1 if _BATCH_START.match(body) else 0)
        try:
            document = loads_bounded(body, max_depth=limit)
        except JSONRefused as exc:
            self.dispatcher.record_rejected(ctx, RPCError(NOT_WELL_FORMED, f"Parse error: {exc}"))
            return self._reply(_error_text(_Refusal(NOT_WELL_FORMED, str(exc), data=str(exc))))
        except ValueError:
            self.dispatcher.record_rejected(ctx, RPCError(NOT_WELL_FORMED, "Parse error"))
            return self._reply(_PARSE_ERROR)
        if isinstance(document, list):
            return self._batch(ctx, document)
        outcome = self._one(ctx, document, None, _encode_single)
        if outcome is None:
            return _no_content()
        request_id, ok, payload = outcome
        request_id = encode_value(request_id)
        if ok:
            return self._reply(f'{{"jsonrpc":"2.0","result":{payload},"id":{request_id}}}')
        payload = encode_value(payload)
        return self._reply(f'{{"jsonrpc":"2.0","error":{payload},"id":{request_id}}}')

    def error_response(self, error: RPCError) -> Response:
        return self._reply(_error_text(error))

    def refuse(self, ctx: CallContext, error: RPCError, body: bytes) -> Response:
        """Record the refusal; answer ``error`` under the id of each request of ``body``.

        The body is parsed once, for both. A refused notification is answered
        as any notification (HTTP 204, no reply); a body whose ids cannot be
        read gets one error with id null.
        """
        try:
            document = loads_bounded(body, max_depth=self.max_depth + 1)
        except ValueError:
            document = None  # answered and recorded as a body of "null" is
        self.dispatcher.record_rejected(ctx, error, method=_method_of(document))
        requests = document if isinstance(document, list) else [document]
        if not all(isinstance(request, dict) for request in requests):
            return self.error_response(error)
        error_object = _error_object(error)
        replies = [
            {"jsonrpc": "2.0", "error": error_object, "id": request["id"]}
            for request in requests
            if "id" in request and _valid_id(request["id"])
        ]
        if not replies and all("id" not in request for request in requests):
            return _no_content()  # notifications only
        if not replies:
            return self.error_response(error)
        return self._reply(encode_value(replies if isinstance(document, list) else replies[0]))

    def method_name(self, body: bytes) -> str:
        try:
            document = loads_bounded(body, max_depth=self.max_depth + 1)
        except ValueError:
            return "-"
        return _method_of(document)

    @staticmethod
    def _reply(text: str) -> Response:
        return Response(text, 200, content_type=CONTENT_TYPE)

    # -- one call ------------------------------------------------------------------

    def _one(
        self,
        ctx: CallContext,
        request: Any,
        index: int | None,
        present: Callable[[Any], Any],
    ) -> tuple[Any, bool, Any] | None:
        """Run one request object: ``(id, ok, result or error object)``, or
        ``None`` for a notification. ``present`` turns the result into what is
        returned (JSON text for a single call, the checked value in a batch)."""
        request_id = request.get("id", _MISSING) if isinstance(request, dict) else None
        refusal = _refusal(request, request_id)
        if refusal is not None:
            method = request.get("method") if isinstance(request, dict) else None
            shown = method[:255] if isinstance(method, str) and method else "-"
            self.dispatcher.record_rejected(ctx, refusal, method=shown, multicall_index=index)
            # An invalid request is answered even without an id.
            good_id = request_id is not _MISSING and _valid_id(request_id)
            return (request_id if good_id else None), False, _error_object(refusal)
        try:
            result = self.dispatcher.call(
                ctx,
                request["method"],
                request.get("params", []),
                system=self.system,
                present=present,
                multicall_index=index,
                wire_code=_wire_code,
            )
        except RPCError as error:
            if request_id is _MISSING:
                return None
            return request_id, False, _error_object(error)
        if request_id is _MISSING:
            return None
        return request_id, True, result

    # -- batches -------------------------------------------------------------------

    def _batch(self, ctx: CallContext, batch: list[Any]) -> Response:
        limit = self.settings.max_multicall
        if not batch or len(batch) > limit:
            why = f"at most {limit} calls per batch" if batch else None
            message = f"Invalid Request: {why or 'an empty batch'}"
            refusal = _Refusal(INVALID_REQUEST, message, data=why)
            self.dispatcher.record_rejected(ctx, refusal, method=BATCH)
            return self._reply(_error_text(refusal))
        try:
            text = self.dispatcher.call(
                ctx, BATCH, batch, system=self.batch_system, present=_encode_replies
            )
        except RPCError as error:  # only a bug in the batch itself gets here
            return self._reply(_error_text(error))
        return _no_content() if text is None else self._reply(text)

    def _run_batch(self, ctx: CallContext, params: Params) -> list[dict[str, Any]]:
        """Each member in order; the replies, notifications left out."""
        replies = []
        for index, request in enumerate(params):
            outcome = self._one(ctx, request, index, _checked)
            if outcome is not None:
                request_id, ok, payload = outcome
                key = "result" if ok else "error"
                replies.append({"jsonrpc": "2.0", key: payload, "id": request_id})
        return replies


def _method_of(document: Any) -> str:
    """The method a parsed request calls, for its record: ``rpc.batch``, a name, or ``"-"``."""
    if isinstance(document, list):
        return BATCH
    method = document.get("method") if isinstance(document, dict) else None
    return method[:255] if isinstance(method, str) and method else "-"


def _valid_id(value: Any) -> bool:
    return value is None or (
        isinstance(value, (str, int, float)) and not isinstance(value, bool)
    )


def _refusal(request: Any, request_id: Any) -> _Refusal | None:
    """Why ``request`` is no valid request object, or ``None`` when it is one."""
    if not isinstance(request, dict):
        return _Refusal(INVALID_REQUEST, "Invalid Request: not an object")
    if request.get("jsonrpc") != "2.0":
        return _Refusal(INVALID_REQUEST, "Invalid Request: 'jsonrpc' must be \"2.0\"")
    if not isinstance(request.get("method"), str):
        return _Refusal(INVALID_REQUEST, "Invalid Request: 'method' must be a string")
    if not isinstance(request.get("params", []), (list, dict)):
        return _Refusal(INVALID_REQUEST, "Invalid Request: 'params' must be an array or object")
    if request_id is not _MISSING and not _valid_id(request_id):
        return _Refusal(INVALID_REQUEST, "Invalid Request: 'id' must be a string, number or null")
    return None


def _error_text(error: RPCError) -> str:
    """A whole response for ``error``, with id null."""
    return f'{{"jsonrpc":"2.0","error":{encode_value(_error_object(error))},"id":null}}'


def _error_object(error: RPCError) -> dict[str, Any]:
    """``error`` as a JSON-RPC error object."""
    code, message = error.code, error.message
    data = getattr(error, "data", None)
    if code == APPLICATION_ERROR and message == APPLICATION_ERROR_MESSAGE:
        code, message = SERVER_ERROR, SERVER_ERROR_MESSAGE
    elif code in _MESSAGES and not isinstance(code, bool):
        if code in _EXPLAINED:
            data = message
        message = _MESSAGES[code]
    if isinstance(code, bool) or not isinstance(code, int):
        try:  # a Fault's code is meant to be an integer; JSON-RPC requires one
            code = int(code)
        except (TypeError, ValueError):
            code, message = SERVER_ERROR, f"{code}: {message}"
    error_object: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error_object["data"] = data
    return error_object


def _wire_code(error: RPCError) -> int:
    """The code a client gets for ``error`` (what the call log records)."""
    code: int = _error_object(error)["code"]
    return code


def _checked(result: Any) -> Any:
    """A ``present`` for batch members: the result, once it is known to encode."""
    try:
        encode_value(result)
    except (TypeError, ValueError) as exc:
        raise RPCError(INTERNAL_ERROR, f"the result cannot be sent as JSON: {exc}") from exc
    return result


def _encode_single(result: Any) -> str:
    try:
        return encode_value(result)
    except (TypeError, ValueError) as exc:
        raise RPCError(INTERNAL_ERROR, f"the result cannot be sent as JSON: {exc}") from exc


def _encode_replies(replies: list[dict[str, Any]]) -> str | None:
    """A batch's replies as one JSON array; ``None`` when there is none to send."""
    return encode_value(replies) if replies else None


def _batch_summary(ctx: CallContext, params: Params) -> Params:
    """What the envelope of a batch records: each member's method name, no params."""
    entries = []
    for request in params if isinstance(params, list) else ():
        name = request.get("method") if isinstance(request, dict) else None
        entries.append({"methodName": name if isinstance(name, str) else "?"})
    return [entries]


def _no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response
