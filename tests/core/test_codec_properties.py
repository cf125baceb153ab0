"""Equivalence with the standard library, by property tests (issue 12 item 4).

For every value both can express, the decoder agrees with
``xmlrpc.client.loads``, and the encoder's output decodes with it to the same
value. Mutated bodies get a fault, never another exception.
"""

from __future__ import annotations

import datetime
import math
import xmlrpc.client
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_rpcenable.errors import RPCError
from flask_rpcenable.protocols.xmlrpc_codec import decode_request
from flask_rpcenable.protocols.xmlrpc_encoder import encode_response

#: Characters XML 1.0 can carry (no C0 controls but tab, newline, CR; no surrogates).
XML_TEXT = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="".join(map(chr, [*range(9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF])),
    ),
    max_size=30,
)
SCALARS = (
    st.integers(-(2**31), 2**31 - 1)
    | st.booleans()
    | XML_TEXT
    | st.floats(allow_nan=False)
    | st.datetimes(min_value=datetime.datetime(1000, 1, 1)).map(lambda d: d.replace(microsecond=0))
    | st.binary(max_size=40)
    | st.none()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(XML_TEXT, inner, max_size=5),
    max_leaves=25,
)


def same(a: Any, b: Any) -> bool:
    """Equal, with -0.0 and 0.0 told apart like the wire does."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) or a == b == math.inf
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(st.lists(VALUES, max_size=4))
def test_decoder_agrees_with_the_standard_library(params: list[Any]) -> None:
    body = xmlrpc.client.dumps(tuple(params), "echo", allow_none=True).encode()
    expected = list(xmlrpc.client.loads(body, use_builtin_types=True)[0])
    assert same(decode_request(body).params, expected)


@pytest.mark.parametrize("text", [" \r", "\t\r", " \r\n", " \r x", "a\n \rb", "\r\n\r"])
def test_blanks_before_a_raw_carriage_return_are_kept(text: str) -> None:
    """Found by the property test above: libxml2 dropped the blanks in front of a raw CR.

    A raw CR reads as LF (XML's end-of-line handling), as in the standard
    library; ``&#13;`` stays a CR.
    """
    body = xmlrpc.client.dumps(({text: text},), "echo").encode()
    expected = list(xmlrpc.client.loads(body, use_builtin_types=True)[0])
    assert decode_request(body).params == expected
    escaped = body.replace(b"\r", b"&#13;")
    assert decode_request(escaped).params == [{text: text}]


@settings(max_examples=300, deadline=None)
@given(VALUES, st.booleans())
def test_encoder_output_reads_back_with_the_standard_library(value: Any, use_i8: bool) -> None:
    body = encode_response(value, use_i8=use_i8)
    (decoded,), _ = xmlrpc.client.loads(body, use_builtin_types=True)
    assert same(decoded, value)


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**63), 2**63 - 1))
def test_big_integers_as_i8(number: int) -> None:
    (decoded,), _ = xmlrpc.client.loads(encode_response(number, use_i8=True))
    assert decoded == number
    body = b"<methodCall><methodName>echo</methodName><params><param><value>"
    body += b"<i8>%d</i8></value></param></params></methodCall>" % number
    call = decode_request(body)
    assert call.params == [number] and call.used_i8


@settings(max_examples=200, deadline=None)
@given(
    VALUES,
    st.sampled_from(
        [" ", "\n", "\t ", "<!-- c -->", "\n<!-- c -->\n", "<?pi x?> ", " <![CDATA[]]> "]
    ),
    st.data(),
)
def test_blanks_and_comments_between_elements_change_nothing(
    value: Any, filler: str, data: st.DataObject
) -> None:
    body = xmlrpc.client.dumps((value,), "echo", allow_none=True)
    # Between two elements (after a '>' that is followed by '<'), never inside text.
    spots = [i + 1 for i in range(len(body) - 1) if body[i] == ">" and body[i + 1] == "<"]
    chosen = data.draw(st.sets(st.sampled_from(spots), max_size=5)) if spots else set()
    for spot in sorted(chosen, reverse=True):
        body = body[:spot] + filler + body[spot:]
    raw = body.encode()
    expected = list(xmlrpc.client.loads(raw, use_builtin_types=True)[0])
    assert same(decode_request(raw).params, expected)


@settings(max_examples=400, deadline=None)
@given(VALUES, st.data())
def test_mutated_bodies_get_a_fault_or_a_value(value: Any, data: st.DataObject) -> None:
    body = bytearray(xmlrpc.client.dumps((value,), "echo", allow_none=True).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        spot = data.draw(st.integers(0, len(body) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert", "drop"]))
        if action == "flip":
            body[spot] = data.draw(st.sampled_from(b"<>/=&;x \"'!?[]\x00\xff"))
        elif action == "cut":
            del body[spot:]
        elif action == "insert":
            body[spot:spot] = data.draw(
                st.sampled_from([b"<a>", b"</value>", b' a="1"', b"<value/>", b"&amp;", b"x"])
            )
        else:
            del body[spot]
        if not body:
            body = bytearray(b"<")
    try:
        decode_request(bytes(body))
    except RPCError as error:
        assert error.code in (-32700, -32600, -32602)
