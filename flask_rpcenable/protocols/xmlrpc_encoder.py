"""The XML-RPC response encoder: a result or an error to ``methodResponse`` bytes.

Values are written in one pass into a list of strings joined once at the end
(type dispatch by ``type(x) is``, no ``write`` call per fragment), in the
same layout as :mod:`xmlrpc.client`, with stricter checks: characters XML 1.0
cannot carry, ``None`` without ``allow_none`` and integers a client cannot
read are refused with -32603 instead of a broken document.
"""

from __future__ import annotations

import binascii
import datetime
import re
from typing import Any
from xmlrpc.client import Binary, DateTime

from ..errors import INTERNAL_ERROR, RPCError
from .xmlrpc_values import I4_MAX, I4_MIN, I8_MAX, I8_MIN

__all__ = [
    "Binary",
    "DateTime",
    "EncodedItems",
    "encode_error",
    "encode_fault_value",
    "encode_response",
    "encode_value",
]

_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class _NoneNotAllowed(TypeError):
    pass


class _UnsendableText(TypeError):
    pass


class EncodedItems(list):  # type: ignore[type-arg]
    """A list whose items are encoded already: written as an array of :attr:`fragments`.

    ``system.multicall`` encodes each entry's result once, inside its recorded
    call; the envelope then splices the fragments instead of encoding again.
    The list itself holds the plain values, for the call log.
    """

    __slots__ = ("fragments",)

    def __init__(self, values: list[Any], fragments: list[str]) -> None:
        super().__init__(values)
        self.fragments = fragments


def _escape(text: str) -> str:
    """Escape character data; ``\\r`` too, which a parser would turn into ``\\n``.

    :raises _UnsendableText: for characters XML 1.0 cannot carry at all.
    """
    # The usual text is printable ASCII: no CR, nothing invalid, no pattern to run.
    plain = text.isascii() and text.isprintable()
    if not plain and _INVALID_XML_CHARS.search(text):
        raise _UnsendableText("characters XML 1.0 cannot carry")
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if not plain and "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def _iso8601(value: datetime.datetime) -> str:
    """``20240102T03:04:05``, as :mod:`xmlrpc.client` writes it (no zone, no fraction)."""
    return _ISO8601 % (value.year, value.month, value.day, value.hour, value.minute, value.second)


_ISO8601 = "%04d%02d%02dT%02d:%02d:%02d"  # one C call; f-string specs are one per field


#: How a subclass of a basic type is sent: as its base type (``IntEnum`` as
#: int, ``Markup`` as str, ``OrderedDict`` as struct ...). Checked in order.
_AS_BASE: dict[type, Any] = {
    bool: bool,
    int: int,
    float: float,
    str: str.__str__,
    bytes: bytes,
    bytearray: bytes,
    dict: dict,
    list: list,
    tuple: list,
    datetime.datetime: lambda v: datetime.datetime(
        v.year, v.month, v.day, v.hour, v.minute, v.second
    ),
    datetime.date: lambda v: datetime.datetime(v.year, v.month, v.day),
    Binary: lambda v: bytes(v.data),
    DateTime: lambda v: DateTime(str(v.value)),
}


class _Writer:
    """Writes values into ``out``, a list of strings.

    Differences from :class:`xmlrpc.client.Marshaller`: integers outside i4
    go out as ``<i8>`` when the client reads it (else the result cannot be
    sent), ``datetime.date`` is a ``dateTime.iso8601`` at midnight, subclasses
    of the basic types are sent as their base type, ``\\r`` survives the
    round trip, and arbitrary objects are refused instead of being sent as a
    struct of their ``__dict__`` (which would leak whatever they hold).
    """

    __slots__ = ("allow_none", "heads", "memo", "out", "use_i8")

    def __init__(self, allow_none: bool, use_i8: bool, out: list[str]) -> None:
        self.allow_none = allow_none
        self.use_i8 = use_i8
        self.out = out
        self.memo: set[int] = set()
        self.heads: dict[str, str] = {}

    def write(self, value: Any) -> None:
        out = self.out
        kind = type(value)
        if kind is str:
            out.append(f"<value><string>{_escape(value)}</string></value>\n")
        elif kind is int:
            if I4_MIN <= value <= I4_MAX:
                out.append(f"<value><int>{value}</int></value>\n")
            elif self.use_i8 and I8_MIN <= value <= I8_MAX:
                out.append(f"<value><i8>{value}</i8></value>\n")
            else:
                raise OverflowError(
                    "an integer is outside the range the client can read"
                    + (" (i8)" if self.use_i8 else " (i4; see RPCENABLE_I8)")
                )
        elif kind is dict:
            self.struct(value)
        elif kind is list or kind is tuple:
            self.array(value)
        elif kind is bool:
            out.append(
                "<value><boolean>1</boolean></value>\n"
                if value
                else "<value><boolean>0</boolean></value>\n"
            )
        elif kind is float:
            out.append(f"<value><double>{value!r}</double></value>\n")
        elif kind is datetime.datetime:
            out.append(f"<value><dateTime.iso8601>{_iso8601(value)}</dateTime.iso8601></value>\n")
        elif value is None:
            if not self.allow_none:
                raise _NoneNotAllowed("None is not allowed")
            out.append("<value><nil/></value>")
        elif kind is bytes or kind is bytearray:
            # One line (one C call): base64.encodebytes's 76-character lines
            # cost a Python step per line, 40 ms for 5 MB; decoders skip newlines
            # either way, so the value read back is the same.
            encoded = binascii.b2a_base64(value, newline=False).decode("ascii")
            out.append(f"<value><base64>\n{encoded}\n</base64></value>\n")
        elif kind is EncodedItems:
            out.append("<value><array><data>\n")
            out.extend(value.fragments)
            out.append("</data></array></value>\n")
        else:
            self.other(value, kind)

    def other(self, value: Any, kind: type) -> None:
        """The rarer types, and subclasses of the basic ones as their base type."""
        if kind is datetime.date:
            self.write(datetime.datetime.combine(value, datetime.time()))
        elif kind is Binary:
            self.write(value.data)
        elif kind is DateTime:
            # DateTime("anything") keeps any string: escape it.
            self.out.append(
                f"<value><dateTime.iso8601>{_escape(str(value.value))}</dateTime.iso8601></value>\n"
            )
        else:
            for base, convert in _AS_BASE.items():
                if isinstance(value, base):
                    self.write(convert(value))
                    return
            raise TypeError(f"cannot marshal {kind.__name__} objects")

    def struct(self, value: dict[Any, Any]) -> None:
        key = id(value)
        if key in self.memo:
            raise TypeError("cannot marshal recursive dictionaries")
        self.memo.add(key)
        out = self.out
        append = out.append
        write = self.write
        heads = self.heads
        append("<value><struct>\n")
        for name, item in value.items():
            head = heads.get(name)
            if head is None:
                head = self.head(name)
            kind = type(item)
            # The usual scalars in one string; anything else through write().
            if kind is str:
                append(f"{head}<value><string>{_escape(item)}</string></value>\n</member>\n")
            elif kind is int and I4_MIN <= item <= I4_MAX:
                append(f"{head}<value><int>{item}</int></value>\n</member>\n")
            elif kind is float:
                append(f"{head}<value><double>{item!r}</double></value>\n</member>\n")
            elif kind is bool:
                append(f"{head}<value><boolean>{1 if item else 0}</boolean></value>\n</member>\n")
            elif kind is datetime.datetime:
                append(
                    f"{head}<value><dateTime.iso8601>{_iso8601(item)}</dateTime.iso8601>"
                    "</value>\n</member>\n"
                )
            else:
                append(head)
                if kind is list:
                    self.array(item)
                else:
                    write(item)
                append("</member>\n")
        append("</struct></value>\n")
        self.memo.discard(key)

    def head(self, name: Any) -> str:
        """The start of a struct member named ``name``, remembered for the next struct."""
        if type(name) is not str:
            if not isinstance(name, str):
                raise TypeError("struct member names must be strings")
            return f"<member>\n<name>{_escape(str.__str__(name))}</name>\n"
        head = f"<member>\n<name>{_escape(name)}</name>\n"
        if len(self.heads) < _MAX_HEADS:
            self.heads[name] = head
        return head

    def array(self, value: list[Any] | tuple[Any, ...]) -> None:
        key = id(value)
        if key in self.memo:
            raise TypeError("cannot marshal recursive sequences")
        self.memo.add(key)
        out = self.out
        append = out.append
        write = self.write
        append("<value><array><data>\n")
        for item in value:
            kind = type(item)
            if kind is str:
                append(f"<value><string>{_escape(item)}</string></value>\n")
            elif kind is int and I4_MIN <= item <= I4_MAX:
                append(f"<value><int>{item}</int></value>\n")
            else:
                write(item)
        append("</data></array></value>\n")
        self.memo.discard(key)


#: How many distinct member names one response remembers the start tags of.
_MAX_HEADS = 256


def _fragments(
    value: Any, allow_none: bool, use_i8: bool, head: str | None = None
) -> list[str]:
    """``value`` written as a ``<value>``, in pieces after ``head``; the errors of
    :func:`encode_response`."""
    writer = _Writer(allow_none, use_i8, [] if head is None else [head])
    try:
        writer.write(value)
    except OverflowError as exc:
        raise RPCError(INTERNAL_ERROR, f"Internal error: the result cannot be sent: {exc}") from exc
    except _NoneNotAllowed as exc:
        raise RPCError(
            INTERNAL_ERROR,
            "Internal error: the result holds None, which this server does not send "
            "(RPCENABLE_ALLOW_NONE)",
        ) from exc
    except _UnsendableText as exc:
        raise RPCError(
            INTERNAL_ERROR,
            "Internal error: the result holds characters XML 1.0 cannot carry; "
            "send bytes as base64",
        ) from exc
    except (TypeError, ValueError, RecursionError) as exc:
        raise RPCError(
            INTERNAL_ERROR, "Internal error: the result holds a value XML-RPC cannot carry"
        ) from exc
    return writer.out


def encode_value(value: Any, *, allow_none: bool = True, use_i8: bool = False) -> str:
    """``value`` as one ``<value>`` element (the errors of :func:`encode_response`)."""
    return "".join(_fragments(value, allow_none, use_i8))


def encode_response(
    result: Any, *, allow_none: bool = True, encoding: str = "utf-8", use_i8: bool = False
) -> bytes:
    """Marshal a method's result into a ``methodResponse``.

    :raises RPCError: -32603 when the result cannot be sent (a type XML-RPC has
        no form for, an integer the client cannot read, ``None`` without
        ``allow_none``, characters XML 1.0 cannot carry). The message names
        the kind of problem, not the value; the original exception is the
        fault's ``__cause__`` for the server log.
    """
    parts = _fragments(result, allow_none, use_i8, _head(encoding) + "<params>\n<param>\n")
    parts.append("</param>\n</params>\n</methodResponse>\n")
    # One join into one string, encoded once: no copy of the list of pieces.
    return "".join(parts).encode(encoding, "xmlcharrefreplace")


def _fault_parts(error: RPCError) -> list[str]:
    code = error.code
    if not isinstance(code, int) or isinstance(code, bool) or not I4_MIN <= code <= I4_MAX:
        code = INTERNAL_ERROR
    text = _INVALID_XML_CHARS.sub("\ufffd", str(error.message))
    return _fragments({"faultCode": code, "faultString": text}, True, False)


def encode_fault_value(error: RPCError) -> str:
    """An error as the ``<value>`` of a fault struct (a multicall entry's failure)."""
    return "".join(_fault_parts(error))


def encode_error(error: RPCError, *, encoding: str = "utf-8") -> bytes:
    """Marshal an error into a ``methodResponse`` holding a fault."""
    parts = [_head(encoding), "<fault>\n", *_fault_parts(error), "</fault>\n</methodResponse>\n"]
    return "".join(parts).encode(encoding, "xmlcharrefreplace")


def _head(encoding: str) -> str:
    return f"<?xml version='1.0' encoding='{encoding}'?>\n<methodResponse>\n"
