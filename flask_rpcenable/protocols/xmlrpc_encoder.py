"""The XML-RPC response encoder: a result or an error to ``methodResponse`` bytes.

Values are marshalled as :mod:`xmlrpc.client` does, with stricter checks:
characters XML 1.0 cannot carry, ``None`` without ``allow_none`` and integers
a client cannot read are refused with -32603 instead of a broken document.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any
from xmlrpc.client import Binary, DateTime, Fault, Marshaller

from ..errors import INTERNAL_ERROR, RPCError
from .xmlrpc_codec import I4_MAX, I4_MIN, I8_MAX, I8_MIN

__all__ = ["Binary", "DateTime", "encode_error", "encode_response"]

_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _escape(text: str) -> str:
    """Escape character data; ``\\r`` too, which a parser would turn into ``\\n``.

    :raises TypeError: for characters XML 1.0 cannot carry at all.
    """
    if not (text.isascii() and text.isprintable()) and _INVALID_XML_CHARS.search(text):
        raise _UnsendableText("characters XML 1.0 cannot carry")
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


class _NoneNotAllowed(TypeError):
    pass


class _UnsendableText(TypeError):
    pass


class _Marshaller(Marshaller):
    """The standard marshaller, stricter and with ``<i8>``.

    Differences from :class:`xmlrpc.client.Marshaller`: integers outside i4
    go out as ``<i8>`` when the client reads it (else the result cannot be
    sent), ``datetime.date`` is a ``dateTime.iso8601`` at midnight, subclasses
    of the basic types (``IntEnum``, ``StrEnum``, ``Markup`` ...) are sent as
    their base type, ``\\r`` survives the round trip, and arbitrary objects
    are refused instead of being sent as a struct of their ``__dict__`` (which
    would leak whatever they hold).
    """

    dispatch = dict(Marshaller.dispatch)
    del dispatch["_arbitrary_instance"]

    def __init__(self, encoding: str | None, allow_none: bool, use_i8: bool) -> None:
        super().__init__(encoding, allow_none)
        self.use_i8 = use_i8

    # The base class calls ``self.__dump``, which Python spells like this
    # (its class is also named ``Marshaller`` once the underscore is gone).
    def _Marshaller__dump(self, value: Any, write: Callable[[str], Any]) -> None:
        try:
            f = self.dispatch[type(value)]
        except KeyError:
            for base in type(value).__mro__[1:]:
                f = self.dispatch.get(base)
                if f is not None:
                    break
            else:
                raise TypeError(f"cannot marshal {type(value).__name__} objects") from None
        f(self, value, write)

    def dump_long(self, value: int, write: Callable[[str], Any]) -> None:
        if I4_MIN <= value <= I4_MAX:
            write("<value><int>")
            write(str(int(value)))
            write("</int></value>\n")
        elif self.use_i8 and I8_MIN <= value <= I8_MAX:
            write("<value><i8>")
            write(str(int(value)))
            write("</i8></value>\n")
        else:
            raise OverflowError(
                "an integer is outside the range the client can read"
                + (" (i8)" if self.use_i8 else " (i4; see RPCENABLE_I8)")
            )

    dispatch[int] = dump_long

    def dump_nil(self, value: None, write: Callable[[str], Any]) -> None:
        if not self.allow_none:
            raise _NoneNotAllowed("None is not allowed")
        write("<value><nil/></value>")

    dispatch[type(None)] = dump_nil

    def dump_unicode(self, value: str, write: Callable[[str], Any]) -> None:  # type: ignore[override]
        write("<value><string>")
        write(_escape(value))
        write("</string></value>\n")

    dispatch[str] = dump_unicode

    def dump_struct(self, value: dict[Any, Any], write: Callable[[str], Any]) -> None:  # type: ignore[override]
        i = id(value)
        if i in self.memo:
            raise TypeError("cannot marshal recursive dictionaries")
        self.memo[i] = None
        dump = self._Marshaller__dump
        write("<value><struct>\n")
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError("struct member names must be strings")
            write("<member>\n<name>")
            write(_escape(k))
            write("</name>\n")
            dump(v, write)
            write("</member>\n")
        write("</struct></value>\n")
        del self.memo[i]

    dispatch[dict] = dump_struct

    def dump_date(self, value: datetime.date, write: Callable[[str], Any]) -> None:
        self.dump_datetime(datetime.datetime.combine(value, datetime.time()), write)

    dispatch[datetime.date] = dump_date

    def dump_binary(self, value: Binary, write: Callable[[str], Any]) -> None:
        self.dump_bytes(value.data, write)

    dispatch[Binary] = dump_binary

    def dump_datetime_wrapper(self, value: DateTime, write: Callable[[str], Any]) -> None:
        # DateTime("anything") keeps any string; the standard marshaller
        # would write it unescaped.
        write("<value><dateTime.iso8601>")
        write(_escape(str(value.value)))
        write("</dateTime.iso8601></value>\n")

    dispatch[DateTime] = dump_datetime_wrapper


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
    marshaller = _Marshaller(encoding, allow_none, use_i8)
    try:
        params = marshaller.dumps((result,))
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
    return _document(params, encoding)


def encode_error(error: RPCError, *, encoding: str = "utf-8") -> bytes:
    """Marshal an error into a ``methodResponse`` holding a fault."""
    code = error.code
    if not isinstance(code, int) or isinstance(code, bool) or not I4_MIN <= code <= I4_MAX:
        code = INTERNAL_ERROR
    text = _INVALID_XML_CHARS.sub("\ufffd", str(error.message))
    body = _Marshaller(encoding, True, False).dumps(Fault(code, text))
    return _document(body, encoding)


def _document(inner: str, encoding: str) -> bytes:
    text = (
        f"<?xml version='1.0' encoding='{encoding}'?>\n<methodResponse>\n{inner}</methodResponse>\n"
    )
    return text.encode(encoding, "xmlcharrefreplace")

