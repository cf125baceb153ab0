"""Bounded JSON reading and JSON result writing, for JSON-RPC.

Reading is the first line of defence, as XML's is: the body size is capped
by the view (or the client's transport) before this runs, and here
:func:`loads_bounded` refuses nesting deeper than a limit (counted on the
bytes, before the parser builds anything), numbers of more than
:data:`MAX_NUMBER_CHARS` characters, ``NaN``, ``Infinity`` and numbers too
large for a float. Everything else is the standard library's C parser.

Writing (:func:`encode_value`) is :mod:`json` with a fallback for the types
XML-RPC carries and JSON does not: ``datetime``/``date``/``time`` become ISO
8601 strings, ``bytes`` base64 strings. ``NaN`` and infinities are refused.
The client uses both functions too.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import re
import xmlrpc.client
from enum import Enum
from itertools import accumulate
from typing import Any

__all__ = [
    "MAX_NUMBER_CHARS",
    "JSONRefused",
    "encode_value",
    "json_default",
    "loads_bounded",
    "nesting_depth",
]

#: The longest number accepted in a document, in characters (sign, digits,
#: point and exponent included): "a few hundred digits".
MAX_NUMBER_CHARS = 400

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_LONG_DIGITS = re.compile(rb"[0-9]{%d}" % MAX_NUMBER_CHARS)


class JSONRefused(ValueError):
    """A document the bounded reader will not read; the message says why."""


def nesting_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body`` (strings skipped).

    Only brackets outside strings count; the bytes are not parsed, so this
    costs a few C-level passes and one step per bracket.
    """
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(_STEP[b] for b in brackets), default=0)


def _refuse_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not a JSON number")


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JSONRefused(f"a number of more than {MAX_NUMBER_CHARS} characters")
    value = float(text)
    if math.isinf(value):
        raise JSONRefused(f"the number {text[:40]} is too large for a double")
    return value


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise JSONRefused(f"a number of more than {MAX_NUMBER_CHARS} characters")
    return int(text)


def loads_bounded(body: bytes | str, *, max_depth: int) -> Any:
    """Parse one JSON document within the limits described above.

    :param max_depth: the deepest nesting of arrays and objects accepted,
        the document's own outermost brackets included.
    :raises JSONRefused: when a limit is passed (the message names it).
    :raises ValueError: when ``body`` is not JSON (:class:`json.JSONDecodeError`,
        :class:`UnicodeDecodeError`).
    """
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    # Counting brackets is only needed when there are more of them than the
    # limit: a small call skips it for the price of two C-level counts.
    if data.count(b"[") + data.count(b"{") > max_depth:
        depth = nesting_depth(data)
        if depth > max_depth:
            raise JSONRefused(f"arrays and objects nest deeper than {max_depth} levels")
    long_digits = _LONG_DIGITS.search(data) is not None
    try:
        return json.loads(
            data,
            parse_float=_parse_float,
            parse_int=_parse_int if long_digits else None,
            parse_constant=_refuse_constant,
        )
    except RecursionError:  # only reachable with a limit above the interpreter's
        raise JSONRefused("arrays and objects nest too deeply") from None


def json_default(value: Any) -> Any:
    """What :func:`json.dumps` sends for a value it has no JSON type for.

    :raises TypeError: for anything else (an arbitrary object is not sent as
        whatever it holds).
    """
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, xmlrpc.client.Binary):
        return base64.b64encode(value.data).decode("ascii")
    if isinstance(value, xmlrpc.client.DateTime):
        try:
            return datetime.datetime.strptime(value.value, "%Y%m%dT%H:%M:%S").isoformat()
        except ValueError:
            return value.value
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"a {type(value).__name__} cannot be sent as JSON")


#: The compact encoder of results and responses, made once (``json.dumps``
#: with options builds a new one on every call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=json_default)


def encode_value(value: Any) -> str:
    """``value`` as compact JSON text (ASCII only: any string survives).

    :raises TypeError: for a value with no JSON form.
    :raises ValueError: for ``NaN``, an infinity or a circular structure.
    """
    return _ENCODER.encode(value)
