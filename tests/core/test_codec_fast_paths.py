"""The decoder's fast paths refuse exactly what its general paths refuse.

Plain ASCII digits skip the regular expressions of ``<int>`` and
``<double>``, the usual ``dateTime.iso8601`` form is read in one C call,
and strings and structs inside arrays and structs are read without a call
to the general ``value()``. Each test here holds one of those shortcuts to
the rules of the long way: other scripts' digits, underscores, impossible
dates, elements inside scalars, and the depth cap.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from flask_rpcenable.errors import INVALID_REQUEST, RPCError
from flask_rpcenable.protocols.xmlrpc_codec import decode_request

MAY_17 = datetime.datetime(2024, 5, 17, 12, 30, 1)


def _call(value: str) -> bytes:
    return (
        "<methodCall><methodName>echo</methodName><params><param><value>"
        f"{value}</value></param></params></methodCall>"
    ).encode()


def _decoded(value: str, **options: Any) -> Any:
    return decode_request(_call(value), **options).params[0]


def _places(scalar: str) -> list[str]:
    """``scalar`` as a parameter, an array item and a struct member."""
    return [
        scalar,
        f"<array><data><value>{scalar}</value></data></array>",
        f"<struct><member><name>k</name><value>{scalar}</value></member></struct>",
    ]


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        ("<int>7</int>", 7),
        ("<int>007</int>", 7),
        ("<int> 7 </int>", 7),
        ("<int>+7</int>", 7),
        ("<int>-7</int>", -7),
        ("<i4>2147483647</i4>", 2**31 - 1),
        ("<double>1.5</double>", 1.5),
        ("<double>-.5</double>", -0.5),
        ("<double>5.</double>", 5.0),
        ("<double>1e5</double>", 1e5),
        ("<dateTime.iso8601>20240517T12:30:01</dateTime.iso8601>", MAY_17),
        ("<dateTime.iso8601>2024-05-17T12:30:01</dateTime.iso8601>", MAY_17),
        ("<string>a</string>", "a"),
        ("<string/>", ""),
    ],
)
def test_valid_scalars_read_the_same_everywhere(scalar: str, expected: Any) -> None:
    param, array, struct = (_decoded(place) for place in _places(scalar))
    assert param == expected and type(param) is type(expected)
    assert array == [expected]
    assert struct == {"k": expected}


@pytest.mark.parametrize(
    "scalar",
    [
        "<int>\u0661\u0662</int>",  # Arabic-Indic digits: int() would take them
        "<int>\uff11</int>",  # a fullwidth digit
        "<int>1_000</int>",
        "<int>2147483648</int>",
        "<int>" + "9" * 21 + "</int>",
        "<double>\u0661.5</double>",
        "<double>1_0.5</double>",
        "<double>--1.5</double>",
        "<double>1.2.3</double>",
        "<double>.</double>",
        "<dateTime.iso8601>20241317T12:30:01</dateTime.iso8601>",
        "<dateTime.iso8601>20240517T12:30:61</dateTime.iso8601>",
        "<dateTime.iso8601>2024051\u0667T12:30:01</dateTime.iso8601>",
        "<int>1<b/></int>",
        "<string>x<b/></string>",
    ],
)
def test_invalid_scalars_are_refused_everywhere(scalar: str) -> None:
    for place in _places(scalar):
        with pytest.raises(RPCError) as excinfo:
            _decoded(place)
        assert excinfo.value.code == INVALID_REQUEST, place


def _nested(depth: int, inner: str = "<int>1</int>") -> str:
    """``depth`` levels alternating struct and array, around ``inner``."""
    value = inner
    for level in range(depth):
        if level % 2:
            value = f"<array><data><value>{value}</value></data></array>"
        else:
            value = f"<struct><member><name>k</name><value>{value}</value></member></struct>"
    return value


@pytest.mark.parametrize("depth", [1, 2, 5, 6])
def test_the_depth_cap_holds_on_the_inline_paths(depth: int) -> None:
    # Structs in arrays and arrays in structs take the inline paths; the
    # parameter's own value is the first level, as on the general path.
    assert _decoded(_nested(depth), max_depth=depth + 1) is not None
    with pytest.raises(RPCError, match=f"deeper than {depth} levels"):
        _decoded(_nested(depth), max_depth=depth)


def test_array_items_count_their_text() -> None:
    # Stray text beside an array's strings is found by the text count.
    with pytest.raises(RPCError, match="text is allowed only"):
        _decoded("<array><data>stray<value><string>a</string></value></data></array>")
    assert _decoded("<array><data><value><string>a</string></value></data></array>") == ["a"]
