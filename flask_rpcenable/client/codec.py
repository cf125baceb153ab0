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

Also here: the objects that turn attribute access into calls
(``remote.math.add``), what of a call's parameters the call log may keep
(:func:`redact_auth_params`), and :class:`MultiCall`, which collects calls
for one ``system.multicall`` request and reads its answer.
"""

from __future__ import annotations

import re
import xmlrpc.client
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn
from xml.parsers import expat

from .errors import BadResponse

if TYPE_CHECKING:
    from .point import XMLRPCPoint

__all__ = [
    "MultiCall",
    "MultiCallResults",
    "decode_response",
    "encode_call",
]

#: The characters the XML-RPC specification allows in a method name (plus
#: ``-``); anything else would need escaping that the format never had.
METHOD_NAME_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,255}$")


class _Method:
    """A remote method name that grows with attribute access: ``remote.a.b``."""

    __slots__ = ("_send", "_name")

    def __init__(self, send: Callable[[str, tuple[Any, ...]], Any], name: str) -> None:
        self._send = send
        self._name = name

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Method(self._send, f"{self._name}.{name}")

    def __call__(self, *args: Any) -> Any:
        return self._send(self._name, args)

    def __repr__(self) -> str:
        return f"<remote method {self._name!r}>"


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


class MultiCall:
    """Calls collected for one ``system.multicall`` request.

    Attribute access records a call; calling the object (or leaving the
    ``with`` block) sends them all and gives the results in order. As with
    :class:`xmlrpc.client.MultiCall`, reading a result that failed raises
    its :class:`xmlrpc.client.Fault`::

        with remote.multicall() as mc:
            mc.echo("a")
            mc.math.add(1, 2)
        echoed, total = mc.results
    """

    def __init__(self, point: XMLRPCPoint) -> None:
        self._point = point
        self._calls: list[tuple[str, tuple[Any, ...]]] = []
        #: The results, once sent: an iterable ``MultiCallResults`` (a
        #: :class:`xmlrpc.client.MultiCallIterator`).
        self.results: xmlrpc.client.MultiCallIterator | None = None

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Method(self._add, name)

    def __getitem__(self, name: str) -> _Method:
        """``mc["name"]``, as on :class:`~flask_rpcenable.client.point.XMLRPCPoint`."""
        return _Method(self._add, name)

    def _add(self, name: str, params: tuple[Any, ...]) -> None:
        self._calls.append((name, params))

    def __call__(self) -> xmlrpc.client.MultiCallIterator:
        """Send the collected calls; return their results."""
        self.results = MultiCallResults(self._point._multicall(self._calls))
        return self.results

    def __enter__(self) -> MultiCall:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self()

    def __repr__(self) -> str:
        return f"<MultiCall of {len(self._calls)} calls to {self._point.url}>"


class MultiCallResults(xmlrpc.client.MultiCallIterator):
    """The results of a ``MultiCall``; a failed call's item raises its fault."""

    def __init__(self, results: list[Any]) -> None:
        super().__init__(results)
        self._results = results

    def __getitem__(self, index: int) -> Any:
        item = self._results[index]
        if isinstance(item, dict) and "faultCode" in item:
            raise xmlrpc.client.Fault(item["faultCode"], item.get("faultString", ""))
        if isinstance(item, list) and len(item) == 1:
            return item[0]
        raise BadResponse(f"system.multicall result {index} is neither [value] nor a fault")

    def __len__(self) -> int:
        return len(self._results)

    def __iter__(self) -> Iterator[Any]:
        for index in range(len(self._results)):
            yield self[index]
