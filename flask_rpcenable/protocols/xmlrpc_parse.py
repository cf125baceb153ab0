"""libxml2 for XML-RPC requests: the parser's settings, and long multicalls refused while read.

The parser leaves entities unresolved, loads no DTD, uses no network, drops
blank text between elements, comments and processing instructions, and
keeps libxml2's own limits (256 levels of elements, text nodes of 10 MB)
unless the app accepts bodies larger than that. Each thread has its own
parser per encoding, made once.

A ``system.multicall`` of more entries than the app allows is refused
without building them: when a byte count says it may be one
(:func:`may_be_long_multicall`), the body is fed to a pull parser in chunks
and the entries of its array are counted after each chunk, so at most one
chunk past the limit is ever built (:func:`refuse_long_multicall`). Other
bodies are parsed whole, in one C call, and their multicall array counted in
the tree (:func:`check_multicall_size`); either way no entry is decoded.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from lxml import etree

from ..errors import INVALID_PARAMS, RPCError

__all__ = [
    "MULTICALL",
    "RefusedCall",
    "check_multicall_size",
    "may_be_long_multicall",
    "parser",
    "refuse_long_multicall",
]

MULTICALL = "system.multicall"
#: Bytes fed to the pull parser between two counts of a long multicall's entries.
CHUNK = 64 * 1024

_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "remove_blank_text": True,
    "remove_comments": True,
    "remove_pis": True,
    "collect_ids": False,
    "strip_cdata": True,
}
_PARSERS = threading.local()
#: A call of ``system.multicall`` (after :func:`~.xmlrpc_scan.plain_sections`
#: removed comments and processing instructions).
_MULTICALL_HEAD = re.compile(
    rb"(?:<\?xml[^>]*\?>)?\s*<methodCall\s*>\s*<methodName>\s*system\.multicall\s*</methodName>"
)
#: How each entry of a multicall names its method; counted in the bytes.
_ENTRY_NAME = b"methodName</name>"
#: The ``<data>`` of a multicall's entries: the array of the call's first
#: parameter (an absolute path: it may be asked of any element of the tree).
_CALL_ARRAY = etree.XPath("/methodCall/params/param[1]/value/array/data")


class RefusedCall(RPCError):
    """A well-formed call refused as a whole before its params were decoded.

    :param method: the method it calls, for the record of the refusal.
    """

    def __init__(self, code: int, message: str, method: str) -> None:
        super().__init__(code, message)
        self.method = method


def parser(encoding: str, huge: bool) -> etree.XMLParser:
    """This thread's parser for ``encoding`` (a parser is not shared across threads).

    ``encoding`` overrides whatever the document declares; ``huge`` lifts
    libxml2's limits.
    """
    parsers: dict[tuple[str, bool], etree.XMLParser] | None = getattr(_PARSERS, "by_key", None)
    if parsers is None:
        parsers = _PARSERS.by_key = {}
    found = parsers.get((encoding, huge))
    if found is None:
        found = parsers[(encoding, huge)] = etree.XMLParser(
            encoding=encoding, huge_tree=huge, **_OPTIONS
        )
    return found


def _too_many(limit: int) -> RefusedCall:
    return RefusedCall(
        INVALID_PARAMS, f"system.multicall: at most {limit} calls per request", MULTICALL
    )


def may_be_long_multicall(body: bytes, limit: int) -> bool:
    """Whether ``body`` may be a ``system.multicall`` of more than ``limit`` entries.

    Two searches in C: more entries than ``limit`` need more ``methodName``
    member names than that, and the call must name ``system.multicall``.
    """
    return (
        len(body) > limit * len(_ENTRY_NAME)  # too short to hold that many: no search
        and body.count(_ENTRY_NAME) > limit
        and _MULTICALL_HEAD.match(body) is not None
    )


def refuse_long_multicall(body: bytes, encoding: str, huge: bool, limit: int) -> None:
    """Read ``body`` in chunks; refuse it once its multicall holds more than ``limit`` entries.

    Returns when it holds no more (the caller then parses it as usual).
    :raises RefusedCall: -32602, as soon as the count passes ``limit``.
    :raises etree.XMLSyntaxError: for a body that is not well-formed.
    """
    pull = etree.XMLPullParser(
        events=("start",), tag="data", encoding=encoding, huge_tree=huge, **_OPTIONS
    )
    data = None
    for start in range(0, len(body), CHUNK):
        pull.feed(body[start : start + CHUNK])
        for _event, element in pull.read_events():
            if data is None and _CALL_ARRAY(element) == [element]:
                data = element
        if data is not None and len(data) > limit:
            raise _too_many(limit)
    pull.close()


def check_multicall_size(params_el: Any, limit: int) -> None:
    """Refuse a ``system.multicall`` of more than ``limit`` entries, counted in the tree."""
    data = _CALL_ARRAY(params_el)
    if data and len(data[0]) > limit:
        raise _too_many(limit)
