"""XML-RPC on the endpoint: decoding, encoding, ``system.*`` and ``system.multicall``.

Every response is ``text/xml`` with HTTP 200, faults included. A result is
encoded inside its recorded call, so that one the client cannot get (say, an
integer beyond ``<i8>``) is recorded as the fault the client gets instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from flask import Response

from ..calls import CallContext, Params
from ..dispatch import SystemMethod
from ..errors import INVALID_PARAMS, INVALID_REQUEST, RPCError
from .base import ProtocolHandler
from .introspection import introspection_methods
from .xmlrpc_codec import DecodedRequest, decode_request
from .xmlrpc_encoder import (
    EncodedItems,
    encode_error,
    encode_fault_value,
    encode_response,
    encode_value,
)
from .xmlrpc_parse import MULTICALL
from .xmlrpc_values import METHOD_NAME_RE

if TYPE_CHECKING:
    from ..state import RPCState

__all__ = ["XMLRPCHandler"]

#: Clients that read ``<i8>``: Python's xmlrpc.client and Apache XML-RPC.
_I8_CLIENTS = re.compile(r"^(Python-xmlrpc/|Apache XML RPC)")
_SYSTEM_NAMES = (
    "system.listMethods",
    "system.methodHelp",
    "system.methodSignature",
    MULTICALL,
)


class XMLRPCHandler(ProtocolHandler):
    """XML-RPC requests of one endpoint."""

    name = "xmlrpc"
    media_types = ("text/xml", "application/xml")
    first_bytes = b"<"

    def __init__(self, state: RPCState) -> None:
        super().__init__(state)
        settings = self.settings
        self.content_type = f"text/xml; charset={settings.encoding}"
        # The two result encoders (without and with ``<i8>``), made once.
        self.encoders = {
            use_i8: partial(
                encode_response,
                allow_none=settings.allow_none,
                encoding=settings.encoding,
                use_i8=use_i8,
            )
            for use_i8 in (False, True)
        }
        # The same, for one multicall entry's ``[result]``.
        self.value_encoders = {
            use_i8: partial(encode_value, allow_none=settings.allow_none, use_i8=use_i8)
            for use_i8 in (False, True)
        }
        # Requests bigger (or values deeper) than libxml2's default limits
        # allow (10 MB text nodes, 256 levels of elements) need them lifted.
        self.huge = settings.max_request_size > 10 * 1024 * 1024 or settings.max_depth > 80
        self.introspection = introspection_methods(self.dispatcher, _SYSTEM_NAMES)
        # The ``system.*`` methods, by ``use_i8``: the same for every request.
        self.systems = {
            use_i8: self._system(self.value_encoders[use_i8]) for use_i8 in (False, True)
        }

    # -- the request ---------------------------------------------------------------

    def respond(self, ctx: CallContext, body: bytes) -> Response:
        settings = self.settings
        try:
            call = self._decode(body)
        except RPCError as error:
            self.dispatcher.record_rejected(ctx, error, method=getattr(error, "method", "-"))
            return self.error_response(error)
        # The User-Agent header is only looked at when nothing else decides.
        use_i8 = settings.i8 == "always" or (
            settings.i8 == "auto" and (call.used_i8 or bool(_I8_CLIENTS.match(ctx.user_agent)))
        )
        encoder = self.encoders[use_i8]
        try:
            payload = self.dispatcher.call(
                ctx,
                call.method,
                call.params,
                system=self.systems[use_i8],
                present=encoder,
            )
        except RPCError as error:
            payload = encode_error(error, encoding=settings.encoding)
        return self._xml(payload)

    def error_response(self, error: RPCError) -> Response:
        return self._xml(encode_error(error, encoding=self.settings.encoding))

    def method_name(self, body: bytes) -> str:
        try:
            method = self._decode(body).method
        except RPCError as error:
            return getattr(error, "method", "-")
        return method[:255] if method else "-"

    def _decode(self, body: bytes) -> DecodedRequest:
        settings = self.settings
        return decode_request(
            body,
            allow_none=settings.allow_none,
            max_depth=settings.max_depth,
            max_elements=settings.max_elements,
            max_multicall=settings.max_multicall,
            huge=self.huge,
        )

    def _xml(self, payload: bytes) -> Response:
        return Response(payload, 200, content_type=self.content_type)

    def _system(self, encode: Callable[[Any], str]) -> dict[str, SystemMethod]:
        """The ``system.*`` methods of a request; ``encode`` writes one entry's value."""
        multicall = partial(self._multicall, present=_presenter(encode))
        return {
            **self.introspection,
            MULTICALL: SystemMethod(multicall, loggable=self._loggable_multicall),
        }

    # -- system.multicall ---------------------------------------------------------------

    def _multicall(
        self,
        ctx: CallContext,
        params: Params,
        *,
        present: Callable[[Any], tuple[Any, str]],
    ) -> EncodedItems:
        """Run each entry; return their results, each encoded once, inside its own call."""
        if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], list):
            raise RPCError(INVALID_PARAMS, "system.multicall(calls: array): expected one array")
        calls = params[0]
        limit = self.settings.max_multicall
        if len(calls) > limit:
            raise RPCError(INVALID_PARAMS, f"system.multicall: at most {limit} calls per request")
        results: list[Any] = []
        fragments: list[str] = []
        for index, call in enumerate(calls):
            name = call.get("methodName") if isinstance(call, dict) else None
            refusal = _refusal(call, name)
            if refusal is not None:
                shown = name[:255] if isinstance(name, str) and name else "-"
                self.dispatcher.record_rejected(ctx, refusal, method=shown, multicall_index=index)
                results.append(_fault_struct(refusal))
                fragments.append(_fault_fragment(refusal))
                continue
            try:
                result, fragment = self.dispatcher.call(
                    ctx,
                    name,  # type: ignore[arg-type]
                    call.get("params", []),
                    system=self.introspection,
                    present=present,
                    multicall_index=index,
                )
            except RPCError as error:
                results.append(_fault_struct(error))
                fragments.append(_fault_fragment(error))
            else:
                results.append([result])
                fragments.append(fragment)
        return EncodedItems(results, fragments)

    def _loggable_multicall(self, ctx: CallContext, params: Params) -> Params:
        """The multicall's parameters with each guarded entry's credentials redacted."""
        if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], list):
            return params
        calls = []
        for call in params[0]:
            if isinstance(call, dict) and isinstance(call.get("methodName"), str):
                procedure = self.dispatcher.registry.get(call["methodName"], ctx.version)
                entry_params = call.get("params")
                if procedure is not None and isinstance(entry_params, list):
                    loggable = self.dispatcher.loggable_params(procedure, entry_params, ctx)
                    call = {**call, "params": loggable}
            calls.append(call)
        return [calls]


def _refusal(call: Any, name: Any) -> RPCError | None:
    """Why a multicall entry cannot run, or ``None`` when it can.

    Its method name is checked as a call's is (a bounded message, never the
    name itself when it is not one).
    """
    if not isinstance(name, str) or not isinstance(call.get("params", []), list):
        return RPCError(
            INVALID_REQUEST, "each multicall entry is a struct with 'methodName' and 'params'"
        )
    if not METHOD_NAME_RE.fullmatch(name):
        return RPCError(INVALID_REQUEST, "invalid 'methodName' in a multicall entry")
    if name == MULTICALL:
        return RPCError(INVALID_REQUEST, "system.multicall cannot be nested")
    return None


def _fault_struct(error: RPCError) -> dict[str, Any]:
    return {"faultCode": error.code, "faultString": error.message}


def _fault_fragment(error: RPCError) -> str:
    return encode_fault_value(error)


def _presenter(encode: Callable[[Any], str]) -> Callable[[Any], tuple[Any, str]]:
    """A ``present`` for multicall entries: the result and its ``[result]``, encoded once."""

    def present(result: Any) -> tuple[Any, str]:
        return result, encode([result])

    return present
