"""The XML-RPC request decoder: bytes to (method, params), with bounded cost.

It knows nothing of Flask. A request first passes the byte checks of
:mod:`.xmlrpc_scan` (encoding, no DTD, an element cap, attributes), then is
parsed by lxml (libxml2, set up in :mod:`.xmlrpc_parse`), whose tree lives
in C memory rather than as Python objects the garbage collector must track;
a ``system.multicall`` of too many entries is refused while it is read.
The walk from the tree to Python values then refuses anything that is not a
``methodCall``: elements out of place, text where none belongs, attributes,
values nested deeper than ``max_depth``. The standard library is not
patched, so other code in the process keeps its own :mod:`xmlrpc.client`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from ..errors import INVALID_REQUEST, NOT_WELL_FORMED, RPCError
from .xmlrpc_parse import (
    MULTICALL,
    RefusedCall,
    check_multicall_size,
    may_be_long_multicall,
    parser,
    refuse_long_multicall,
)
from .xmlrpc_scan import ATTRIBUTES_REFUSED, SAFE_ENCODINGS, check_body, plain_sections
from .xmlrpc_values import (
    I4_MAX,
    I4_MIN,
    I8_MAX,
    I8_MIN,
    METHOD_NAME_RE,
    SCALARS,
    parse_int,
)

__all__ = [
    "DEFAULT_MAX_ELEMENTS",
    "I4_MAX",
    "I4_MIN",
    "I8_MAX",
    "I8_MIN",
    "SAFE_ENCODINGS",
    "DecodedRequest",
    "RefusedCall",
    "decode_request",
]

#: The default cap on elements per request (``RPCENABLE_MAX_ELEMENTS``).
DEFAULT_MAX_ELEMENTS = 1_000_000

_HAS_ATTRIBUTE = etree.XPath("boolean(//@*)")


@dataclass(slots=True)  # not frozen: a frozen dataclass costs 0.3 us more to build
class DecodedRequest:
    """A decoded ``methodCall``."""

    method: str
    params: list[Any]
    #: Whether the request itself used ``<i8>``, a sign the client reads it.
    used_i8: bool = False


def _too_deep(max_depth: int) -> str:
    return f"values are nested deeper than {max_depth} levels"


_BAD_MEMBER = "a <struct> holds <member> elements of one <name> and one <value>"
_ONE_TYPED = "a <value> holds exactly one typed element"
_STRAY_TEXT = "text is allowed only in <methodName>, <name>, <value> and scalar types"


class _Walker:
    """Turns ``<value>`` elements into Python values, with a depth cap.

    It adds up the length of every text it reads (:attr:`chars`): when the
    document holds more text than that, some of it stands where none belongs
    (blank text between elements was dropped by the parser), which one
    comparison finds without reading each element's tail.
    """

    __slots__ = ("allow_none", "chars", "max_depth", "used_i8")

    def __init__(self, *, allow_none: bool, max_depth: int) -> None:
        self.allow_none = allow_none
        self.max_depth = max_depth
        self.used_i8 = False
        self.chars = 0

    def text(self, element: Any) -> str:
        """The text of a leaf element, counted."""
        text = element.text
        if text is None:
            return ""
        self.chars += len(text)
        return text

    def blank(self, element: Any, where: str) -> None:
        """Count the text of an empty container, which may only be white space."""
        text = element.text
        if text is not None:
            if not text.isspace():
                raise RPCError(INVALID_REQUEST, _STRAY_TEXT)
            self.chars += len(text)

    def value(self, element: Any, depth: int) -> Any:
        count = len(element)
        if not count:  # untyped: a string
            text = element.text
            if text is None:
                return ""
            self.chars += len(text)
            return text
        if count != 1:
            raise RPCError(INVALID_REQUEST, _ONE_TYPED)
        typed = element[0]
        tag = typed.tag
        scalar = SCALARS.get(tag)
        if scalar is None and tag[0] == "{":  # namespaced extensions: ex:i8, ex:nil
            tag = tag.rpartition("}")[2]
            scalar = SCALARS.get(tag)
        if scalar is not None:
            if len(typed):
                raise RPCError(INVALID_REQUEST, f"<{tag}> cannot contain elements")
            text = typed.text
            if text is None:
                text = ""
            else:
                self.chars += len(text)
            try:
                return scalar(text)
            except ValueError as exc:
                raise RPCError(INVALID_REQUEST, f"invalid <{tag}> value") from exc
        if tag == "struct":
            return self.struct(typed, depth + 1)
        if tag == "array":
            return self.array(typed, depth + 1)
        if tag == "i8":
            self.used_i8 = True
            if len(typed):
                raise RPCError(INVALID_REQUEST, "<i8> cannot contain elements")
            try:
                return parse_int(self.text(typed), I8_MIN, I8_MAX)
            except ValueError as exc:
                raise RPCError(INVALID_REQUEST, "invalid <i8> value") from exc
        if tag == "nil":
            if not self.allow_none:
                raise RPCError(INVALID_REQUEST, "<nil/> is not accepted by this server")
            if len(typed):
                raise RPCError(INVALID_REQUEST, "<nil> holds nothing")
            self.blank(typed, "nil")
            return None
        raise RPCError(INVALID_REQUEST, f"unknown XML-RPC type <{tag}>")

    def _too_deep(self) -> RPCError:
        return RPCError(INVALID_REQUEST, _too_deep(self.max_depth))

    def array(self, typed: Any, depth: int) -> list[Any]:
        if len(typed) != 1:
            raise RPCError(INVALID_REQUEST, "an <array> holds exactly one <data>")
        data = typed[0]
        if data.tag != "data":
            raise RPCError(INVALID_REQUEST, "an <array> holds exactly one <data>")
        if not len(data):
            self.blank(data, "data")
            return []
        if depth > self.max_depth:
            raise self._too_deep()
        items = []
        append = items.append
        value = self.value
        chars = 0
        for item in data:
            if item.tag != "value":
                raise RPCError(INVALID_REQUEST, "<data> holds only <value> elements")
            # Strings and structs, the usual items, without a call to value().
            if len(item) == 1:
                leaf = item[0]
                tag = leaf.tag
                if len(leaf):
                    if tag == "struct":
                        append(self.struct(leaf, depth + 1))
                        continue
                elif tag == "string":
                    text = leaf.text
                    if text is None:
                        append("")
                    else:
                        chars += len(text)
                        append(text)
                    continue
            append(value(item, depth))
        self.chars += chars
        return items

    def struct(self, typed: Any, depth: int) -> dict[str, Any]:
        if not len(typed):
            self.blank(typed, "struct")
            return {}
        if depth > self.max_depth:
            raise self._too_deep()
        value = self.value
        chars = 0
        result = {}
        for member in typed:
            if member.tag != "member" or len(member) != 2:
                raise RPCError(INVALID_REQUEST, _BAD_MEMBER)
            name = member[0]
            item = member[1]
            if name.tag != "name":  # the order is not guaranteed by every client
                name, item = item, name
                if name.tag != "name":
                    raise RPCError(INVALID_REQUEST, _BAD_MEMBER)
            if item.tag != "value" or len(name):
                raise RPCError(INVALID_REQUEST, _BAD_MEMBER)
            key = name.text
            if key is None:
                key = ""
            else:
                chars += len(key)
            if len(item) == 1:  # the usual values here, without a call to value()
                leaf = item[0]
                tag = leaf.tag
                if len(leaf):
                    if tag == "array":
                        result[key] = self.array(leaf, depth + 1)
                        continue
                    if tag == "struct":
                        result[key] = self.struct(leaf, depth + 1)
                        continue
                else:
                    text = leaf.text
                    if tag == "string":
                        if text is None:
                            result[key] = ""
                        else:
                            chars += len(text)
                            result[key] = text
                        continue
                    scalar = SCALARS.get(tag)
                    if scalar is not None:
                        try:
                            result[key] = scalar("" if text is None else text)
                        except ValueError:
                            pass  # value() below raises the fault
                        else:
                            if text is not None:
                                chars += len(text)
                            continue
            result[key] = value(item, depth)
        self.chars += chars
        return result


def decode_request(
    body: bytes,
    *,
    allow_none: bool = True,
    max_depth: int = 32,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    max_multicall: int | None = None,
    huge: bool = False,
) -> DecodedRequest:
    """Parse an XML-RPC ``methodCall``.

    :param body: the raw (already decompressed) request body.
    :param allow_none: accept ``<nil/>`` values.
    :param max_depth: how deeply arrays and structs may nest.
    :param max_elements: the most elements the request may hold.
    :param max_multicall: the most entries a ``system.multicall`` may hold;
        more are refused (:class:`RefusedCall`, -32602) before any is decoded.
    :param huge: lift libxml2's limits for bodies over 10 MB (text nodes
        longer than 10 MB, elements nested deeper than 256 levels); for apps
        whose ``RPCENABLE_MAX_REQUEST_SIZE`` is larger than that.
    :raises RPCError: -32700 for a body that is not well-formed XML,
        carries a DTD or uses an unsupported encoding; -32600 for
        well-formed XML that is no valid call (or holds an invalid value).
    """
    body, encoding = check_body(body, max_elements)
    body = plain_sections(body)
    if b"\r" in body:
        # XML's end-of-line handling (CR LF and a lone CR read as LF), done
        # before libxml2 runs: with its option that drops blank text between
        # elements, it also drops blanks in front of a raw CR (" \r" would
        # read "\n", not " \n"). Every encoding accepted is ASCII-compatible.
        body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    try:
        if max_multicall is not None and may_be_long_multicall(body, max_multicall):
            refuse_long_multicall(body, encoding, huge, max_multicall)
        root = etree.fromstring(body, parser(encoding, huge))  # noqa: S320 - checked above
    except etree.XMLSyntaxError as exc:
        if "Excessive depth" in str(exc):  # libxml2's own cap: 256 levels of elements
            raise RPCError(INVALID_REQUEST, _too_deep(max_depth)) from None
        raise RPCError(NOT_WELL_FORMED, f"not well-formed: {exc}") from None
    if root.tag != "methodCall":
        raise RPCError(INVALID_REQUEST, "the root element must be <methodCall>")
    # An attribute needs a "=" after the XML declaration; most bodies hold none.
    after = body.find(b"?>") + 2 if body.startswith(b"<?xml") else 0
    if body.find(b"=", after) >= 0 and _HAS_ATTRIBUTE(root):
        raise RPCError(INVALID_REQUEST, ATTRIBUTES_REFUSED)
    count = len(root)
    name_el = root[0] if count else None
    if not 1 <= count <= 2 or name_el.tag != "methodName":  # type: ignore[union-attr]
        raise RPCError(INVALID_REQUEST, "a <methodCall> holds <methodName> and <params>")
    walker = _Walker(allow_none=allow_none, max_depth=max_depth)
    raw_name = walker.text(name_el)
    name = raw_name.strip()
    if len(name_el) or not METHOD_NAME_RE.fullmatch(name):  # type: ignore[arg-type]
        raise RPCError(INVALID_REQUEST, "missing or invalid <methodName>")
    params: list[Any] = []
    if count == 2:
        params_el = root[1]
        if params_el.tag != "params":
            raise RPCError(INVALID_REQUEST, "a <methodCall> holds <methodName> and <params>")
        if not len(params_el):
            walker.blank(params_el, "params")
        elif max_multicall is not None and name == MULTICALL:
            check_multicall_size(params_el, max_multicall)
        value = walker.value
        for param in params_el:
            if param.tag != "param" or len(param) != 1:
                raise RPCError(INVALID_REQUEST, _BAD_PARAM)
            item = param[0]
            if item.tag != "value":
                raise RPCError(INVALID_REQUEST, _BAD_PARAM)
            params.append(value(item, 1))
    # Every text the walk accepted was counted; any other is out of place.
    if len(_all_text(root)) != walker.chars:
        raise RPCError(INVALID_REQUEST, _STRAY_TEXT)
    return DecodedRequest(name, params, walker.used_i8)


_BAD_PARAM = "<params> holds <param> elements of one <value>"


def _all_text(root: Any) -> str:
    """All the text in ``root``, in C, as one string."""
    return etree.tostring(root, method="text", encoding="unicode", with_tail=False)
