"""The scalar types of XML-RPC: their ranges, and parsers from text to Python values.

Shared by the decoder (text to values) and the encoder (the integer ranges).
Each parser raises :class:`ValueError` for text that is no valid value of
its type; the decoder turns that into fault -32600.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "I4_MAX",
    "I4_MIN",
    "I8_MAX",
    "I8_MIN",
    "METHOD_NAME_RE",
    "SCALARS",
    "parse_int",
]

I4_MIN, I4_MAX = -(2**31), 2**31 - 1
I8_MIN, I8_MAX = -(2**63), 2**63 - 1

#: What a method name may be: the same rule for calls and multicall entries.
METHOD_NAME_RE = re.compile(r"[A-Za-z0-9_.:/]{1,255}")

_INT_RE = re.compile(r"[+-]?[0-9]{1,20}")
#: Decimal notation with an optional exponent; also ``inf`` and ``nan``,
#: which Python's client sends for those values.
_DOUBLE_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?|inf|infinity|nan)",
    re.IGNORECASE,
)


def _identity(text: str) -> str:
    return text


def parse_int(text: str, low: int = I4_MIN, high: int = I4_MAX) -> int:
    """An integer in ``[low, high]`` written in decimal (white space around is fine)."""
    # The usual case, plain ASCII digits, without the regular expression
    # (int() alone would also take "1_000", other scripts' digits and spaces).
    if len(text) <= 20 and text.isdigit() and text.isascii():
        number = int(text)
        if not low <= number <= high:
            raise ValueError(text)
        return number
    text = text.strip()
    if not _INT_RE.fullmatch(text):
        raise ValueError(text)
    number = int(text, 10)
    if not low <= number <= high:
        raise ValueError(text)
    return number


def _parse_double(text: str) -> float:
    # The usual case, digits with one point and maybe a sign ("-12.5"),
    # without the regular expression.
    if len(text) <= 400 and text.isascii() and text.lstrip("-").replace(".", "", 1).isdigit():
        return float(text)
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
    if len(text) > 40 or not text.isascii():  # strptime would read other scripts' digits
        raise ValueError("not an ASCII date and time")
    # The common form, 20240102T03:04:05, in one C call; what it refuses
    # goes the long way below (whose last step is the same call).
    if len(text) == 17 and text[8] == "T" and text[11] == ":" == text[14]:
        try:
            return datetime.datetime.fromisoformat(text)
        except ValueError:
            pass
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt)
        except ValueError:
            continue
    # Time zones and fractions: ISO 8601 as Python reads it.
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _parse_base64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError("invalid base64") from exc


#: The parsers of the scalar types, by tag.
SCALARS: dict[str, Callable[[str], Any]] = {
    "int": parse_int,
    "i4": parse_int,
    "string": _identity,
    "double": _parse_double,
    "boolean": _parse_bool,
    "dateTime.iso8601": _parse_datetime,
    "base64": _parse_base64,
}
