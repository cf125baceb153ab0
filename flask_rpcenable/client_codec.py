"""The client's side of the XML-RPC codec: calls to bytes, responses back.

Responses come from remote servers, so they are parsed defensively without
touching the standard library's global state: a document type declaration
(and with it every entity declaration) is refused by an Expat handler
before anything is declared, whatever the document's encoding; arrays and
structs may nest only ``max_depth`` levels; the root element must be
``<methodResponse>``. The values themselves are built by
:class:`xmlrpc.client.Unmarshaller`, so results have exactly the types
:class:`xmlrpc.client.ServerProxy` gives (``DateTime``/``Binary`` or, with
``use_builtin_types``, ``datetime``/``bytes``).
"""

from __future__ import annotations

import re
import xmlrpc.client
from collections.abc import Sequence
from typing import Any, NoReturn
from xml.parsers import expat

from .client_errors import BadResponse

__all__ = ["decode_response", "encode_call"]

#: The characters the XML-RPC specification allows in a method name (plus
#: ``-``); anything else would need escaping that the format never had.
METHOD_NAME_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,255}$")


def encode_call(
    method: str, params: Sequence[Any], *, encoding: str | None = None, allow_none: bool = True
) -> bytes:
    """Marshal a ``methodCall`` to the exact bytes that will be sent.

    :raises ValueError: for a method name XML-RPC cannot carry.
    :raises TypeError: for a parameter XML-RPC has no form for (or ``None``
        without ``allow_none``).
    :raises OverflowError: for an integer outside the 32-bit range.
    """
    if not isinstance(method, str) or not METHOD_NAME_RE.match(method):
        raise ValueError(f"invalid XML-RPC method name: {method!r}")
    text = xmlrpc.client.dumps(
        tuple(params), method, encoding=encoding, allow_none=allow_none
    )
    return text.encode(encoding or "utf-8", "xmlcharrefreplace")


class _Unmarshaller(xmlrpc.client.Unmarshaller):
    """The standard unmarshaller, checking the root element and the nesting."""

    def __init__(self, *, use_datetime: bool, use_builtin_types: bool, max_depth: int) -> None:
        super().__init__(use_datetime=use_datetime, use_builtin_types=use_builtin_types)
        self._root_seen = False
        self._depth = 0
        self._max_depth = max_depth

    def start(self, tag: str, attrs: Any) -> None:
        local = tag.rpartition(":")[2]
        if not self._root_seen:
            if local != "methodResponse":
                raise BadResponse(f"the root element is <{tag}>, not <methodResponse>")
            self._root_seen = True
        if local in ("array", "struct"):
            self._depth += 1
            if self._depth > self._max_depth:
                raise BadResponse(
                    f"response values are nested deeper than {self._max_depth} levels"
                )
        super().start(tag, attrs)

    def end(self, tag: str) -> None:
        if tag.rpartition(":")[2] in ("array", "struct"):
            self._depth -= 1
        super().end(tag)


def _refuse_dtd(*args: Any) -> NoReturn:
    raise BadResponse("the response has a document type declaration; DTDs are not accepted")


def decode_response(
    body: bytes,
    *,
    use_builtin_types: bool = False,
    use_datetime: bool = False,
    max_depth: int = 64,
) -> Any:
    """Parse a ``methodResponse``.

    :returns: the single result value (a tuple if a server sent several,
        as :class:`xmlrpc.client.ServerProxy` does).
    :raises xmlrpc.client.Fault: when the response is a fault.
    :raises BadResponse: when the body is not a well-formed, safe XML-RPC
        response.
    """
    # Cheap early refusal with a clear message; the Expat handlers below are
    # what makes it safe for every encoding.
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        _refuse_dtd()
    target = _Unmarshaller(
        use_datetime=use_datetime, use_builtin_types=use_builtin_types, max_depth=max_depth
    )
    target.xml(None, None)  # Expat hands over text, not bytes (as ExpatParser does)
    parser = expat.ParserCreate(None, None)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.StartElementHandler = target.start
    parser.EndElementHandler = target.end
    parser.CharacterDataHandler = target.data
    parser.buffer_text = True
    parser.ordered_attributes = True
    try:
        parser.Parse(body, True)
        result = target.close()
    except (BadResponse, xmlrpc.client.Fault):
        raise
    except expat.ExpatError as exc:
        raise BadResponse(f"the response is not well-formed XML: {exc}") from None
    except xmlrpc.client.ResponseError as exc:
        detail = f": {exc.args[0]}" if exc.args else ""
        raise BadResponse(f"the response is not a valid XML-RPC response{detail}") from None
    except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
        raise BadResponse(f"the response holds an invalid value: {exc}") from None
    if not target._root_seen:
        raise BadResponse("the response is empty")
    return result[0] if len(result) == 1 else result
