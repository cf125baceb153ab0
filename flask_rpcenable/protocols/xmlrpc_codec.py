"""The XML-RPC request decoder: bytes to (method, params), safely.

It knows nothing of Flask. Requests are parsed with the C-accelerated
:mod:`xml.etree.ElementTree` after a cheap scan that refuses document type
declarations (and so every entity declaration, internal or external) before
the parser sees them. The scan is sound because only ASCII-compatible
encodings are accepted and the parser is told the encoding the codec
checked (which overrides the document's declaration), so a document cannot
switch the parser to another encoding behind the scan's back. Behind it,
expat itself (2.4 and later) caps entity amplification, and ElementTree
never loads external entities. The standard library is not patched, so
other code in the process keeps its own :mod:`xmlrpc.client` behaviour.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import datetime
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import INVALID_REQUEST, NOT_WELL_FORMED, RPCError

__all__ = ["DecodedRequest", "I4_MAX", "I4_MIN", "I8_MAX", "I8_MIN", "decode_request"]

I4_MIN, I4_MAX = -(2**31), 2**31 - 1
I8_MIN, I8_MAX = -(2**63), 2**63 - 1

#: Encodings a request may declare. All are ASCII-compatible, which is what
#: makes the byte scan for declarations sound.
#: (Python's canonical codec names; ``codecs.lookup`` maps the aliases.)
SAFE_ENCODINGS = frozenset({"utf-8", "ascii", "iso8859-1", "iso8859-15", "cp1252"})
_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_XML_DECL_RE = re.compile(rb"<\?xml\s[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']")
#: ``<!`` that opens anything but a comment or a CDATA section: DOCTYPE,
#: ENTITY, ELEMENT, ATTLIST and the like, which only a DTD may hold.
_DECLARATION_RE = re.compile(rb"<!(?!--|\[CDATA\[)")
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_METHOD_NAME_RE = re.compile(r"[A-Za-z0-9_.:/]{1,255}")


@dataclass(frozen=True)
class DecodedRequest:
    """A decoded ``methodCall``."""

    method: str
    params: list[Any]
    #: Whether the request itself used ``<i8>``, a sign the client reads it.
    used_i8: bool = False


class _Decoder:
    """Turns ``<value>`` elements into Python values, with a depth cap."""

    __slots__ = ("allow_none", "max_depth", "used_i8")

    def __init__(self, *, allow_none: bool, max_depth: int) -> None:
        self.allow_none = allow_none
        self.max_depth = max_depth
        self.used_i8 = False

    def value(self, element: ET.Element, depth: int) -> Any:
        if len(element) != 1:
            if not len(element):  # untyped: a string
                return element.text or ""
            raise RPCError(INVALID_REQUEST, "a <value> holds exactly one typed element")
        text = element.text
        if text and not text.isspace():
            raise RPCError(INVALID_REQUEST, "a <value> holds exactly one typed element")
        typed = element[0]
        tag = typed.tag
        scalar = _SCALARS.get(tag)
        if scalar is None and tag[0] == "{":  # namespaced extensions: ex:i8, ex:nil
            tag = tag.rpartition("}")[2]
            scalar = _SCALARS.get(tag)
        if scalar is not None:
            if len(typed):
                raise RPCError(INVALID_REQUEST, f"<{tag}> cannot contain elements")
            try:
                return scalar(typed.text or "")
            except (ValueError, binascii.Error) as exc:
                raise RPCError(INVALID_REQUEST, f"invalid <{tag}> value") from exc
        if tag == "array":
            return self._array(typed, depth + 1)
        if tag == "struct":
            return self._struct(typed, depth + 1)
        if tag == "i8":
            self.used_i8 = True
            try:
                return _parse_int(typed.text or "", I8_MIN, I8_MAX)
            except ValueError as exc:
                raise RPCError(INVALID_REQUEST, "invalid <i8> value") from exc
        if tag == "nil":
            if not self.allow_none:
                raise RPCError(INVALID_REQUEST, "<nil/> is not accepted by this server")
            if len(typed):
                raise RPCError(INVALID_REQUEST, "<nil> cannot contain elements")
            return None
        raise RPCError(INVALID_REQUEST, f"unknown XML-RPC type <{tag}>")

    def _too_deep(self) -> str:
        return f"values are nested deeper than {self.max_depth} levels"

    def _array(self, typed: ET.Element, depth: int) -> list[Any]:
        if len(typed) != 1 or typed[0].tag != "data":
            raise RPCError(INVALID_REQUEST, "an <array> holds exactly one <data>")
        data = typed[0]
        if depth > self.max_depth and len(data):
            raise RPCError(INVALID_REQUEST, self._too_deep())
        value = self.value
        items = []
        for item in data:
            if item.tag != "value":
                raise RPCError(INVALID_REQUEST, "<data> holds only <value> elements")
            items.append(value(item, depth))
        return items

    def _struct(self, typed: ET.Element, depth: int) -> dict[str, Any]:
        if depth > self.max_depth and len(typed):
            raise RPCError(INVALID_REQUEST, self._too_deep())
        value = self.value
        result = {}
        for member in typed:
            if member.tag != "member" or len(member) != 2:
                raise RPCError(INVALID_REQUEST, _BAD_MEMBER)
            name, item = member
            if name.tag != "name":  # the order is not guaranteed by every client
                name, item = item, name
            if name.tag != "name" or item.tag != "value" or len(name):
                raise RPCError(INVALID_REQUEST, _BAD_MEMBER)
            result[name.text or ""] = value(item, depth)
        return result


_BAD_MEMBER = "a <struct> holds <member> elements of one <name> and one <value>"
_INT_RE = re.compile(r"[+-]?[0-9]{1,20}")
#: Decimal notation with an optional exponent; also ``inf`` and ``nan``,
#: which Python's client sends for those values.
_DOUBLE_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?|inf|infinity|nan)",
    re.IGNORECASE,
)


def _identity(text: str) -> str:
    return text


def _parse_int(text: str, low: int = I4_MIN, high: int = I4_MAX) -> int:
    text = text.strip()
    if not _INT_RE.fullmatch(text):
        raise ValueError(text)
    number = int(text, 10)
    if not low <= number <= high:
        raise ValueError(text)
    return number


def _parse_double(text: str) -> float:
    text = text.strip()
    if len(text) > 400 or not _DOUBLE_RE.fullmatch(text):
        raise ValueError(text)
    return float(text)


def _parse_bool(text: str) -> bool:
    text = text.strip()
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise ValueError(text)


_DATETIME_FORMATS = ("%Y%m%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%dT%H%M%S")


def _parse_datetime(text: str) -> datetime.datetime:
    text = text.strip()
    # The common form, 20240102T03:04:05, without strptime's locale work.
    if len(text) == 17 and text[8] == "T" and text[11] == ":" == text[14] and text.isascii():
        digits = text[:8] + text[9:11] + text[12:14] + text[15:]
        if digits.isdigit():
            return datetime.datetime(
                int(digits[:4]), int(digits[4:6]), int(digits[6:8]),
                int(digits[8:10]), int(digits[10:12]), int(digits[12:14]),
            )  # fmt: skip
    if len(text) > 40:
        raise ValueError("too long")
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt)
        except ValueError:
            continue
    # Time zones and fractions: ISO 8601 as Python reads it.
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _parse_base64(text: str) -> bytes:
    return base64.b64decode("".join(text.split()), validate=True)


#: The parsers of the scalar types, by tag.
_SCALARS: dict[str, Callable[[str], Any]] = {
    "int": _parse_int,
    "i4": _parse_int,
    "string": _identity,
    "double": _parse_double,
    "boolean": _parse_bool,
    "dateTime.iso8601": _parse_datetime,
    "base64": _parse_base64,
}


def _checked_encoding(body: bytes) -> tuple[bytes, str]:
    """Check the body's prolog; return the body and the encoding to parse it in.

    Only ASCII-compatible encodings are accepted (UTF-8 by default, or one
    of :data:`SAFE_ENCODINGS` named in the XML declaration). That makes the
    byte scan for ``<!`` sound, and because the parser is then told that
    encoding (which overrides anything the document declares), it cannot be
    talked into another one behind the scan's back.
    """
    if body.startswith(_UTF8_BOM):
        body = body[3:]
    elif body.startswith(_WIDE_BOMS) or body[:4].count(0):
        raise RPCError(
            NOT_WELL_FORMED, "not well-formed: unsupported document encoding; send UTF-8"
        )
    encoding = "utf-8"
    if body.startswith(b"<?xml"):
        match = _XML_DECL_RE.match(body, 0, 1024)
        if match:
            try:
                encoding = codecs.lookup(match.group(1).decode("ascii")).name
            except LookupError:
                encoding = ""
            if encoding not in SAFE_ENCODINGS:
                raise RPCError(
                    NOT_WELL_FORMED, "not well-formed: unsupported document encoding; send UTF-8"
                )
    if b"<!" in body and _DECLARATION_RE.search(body):
        raise RPCError(
            NOT_WELL_FORMED, "not well-formed: DTDs and entity declarations are not allowed"
        )
    return body, encoding


def decode_request(body: bytes, *, allow_none: bool = True, max_depth: int = 32) -> DecodedRequest:
    """Parse an XML-RPC ``methodCall``.

    :param body: the raw (already decompressed) request body.
    :param allow_none: accept ``<nil/>`` values.
    :param max_depth: how deeply arrays and structs may nest.
    :raises RPCError: -32700 for a body that is not well-formed XML,
        carries a DTD or uses an unsupported encoding; -32600 for
        well-formed XML that is no valid call (or holds an invalid value).
    """
    body, encoding = _checked_encoding(body)
    try:
        parser = ET.XMLParser(encoding=encoding)  # noqa: S314 - declarations refused above
        parser.feed(body)
        root = parser.close()
    except ET.ParseError as exc:
        raise RPCError(NOT_WELL_FORMED, f"not well-formed: {exc}") from None
    if root.tag != "methodCall":
        raise RPCError(INVALID_REQUEST, "the root element must be <methodCall>")
    name_el = root.find("methodName")
    name = (name_el.text or "").strip() if name_el is not None else ""
    if not _METHOD_NAME_RE.fullmatch(name) or len(name_el):  # type: ignore[arg-type]
        raise RPCError(INVALID_REQUEST, "missing or invalid <methodName>")
    decoder = _Decoder(allow_none=allow_none, max_depth=max_depth)
    params: list[Any] = []
    params_el = root.find("params")
    if params_el is not None:
        for param in params_el:
            value = param.find("value") if param.tag == "param" else None
            if value is None or len(param) != 1:
                raise RPCError(
                    INVALID_REQUEST, "<params> holds <param> elements of one <value>"
                )
            params.append(decoder.value(value, 1))
    return DecodedRequest(name, params, decoder.used_i8)
