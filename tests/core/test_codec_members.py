"""Struct members through the codec's fast paths: the decoder's member loop and the encoder's.

The decoder reads the usual scalars of a member without a call, and the
encoder writes the usual scalar members as one string and remembers member
start tags; these tests hold both to the standard library and to the
faults of the general path.
"""

from __future__ import annotations

import datetime
import xmlrpc.client
from typing import Any

import pytest

from flask_rpcenable.errors import INVALID_REQUEST, RPCError
from flask_rpcenable.protocols.xmlrpc_codec import decode_request
from flask_rpcenable.protocols.xmlrpc_encoder import encode_response


def _call(struct_body: str) -> bytes:
    return (
        "<methodCall><methodName>echo</methodName><params><param><value><struct>"
        f"{struct_body}</struct></value></param></params></methodCall>"
    ).encode()


@pytest.mark.parametrize(
    "member, expected",
    [
        ("<member><name>a</name><value><int>7</int></value></member>", {"a": 7}),
        ("<member><value><int>7</int></value><name>a</name></member>", {"a": 7}),
        ("<member><name>a</name><value><string/></value></member>", {"a": ""}),
        ("<member><name/><value><i4> 3 </i4></value></member>", {"": 3}),
        ("<member><name>b</name><value><boolean>1</boolean></value></member>", {"b": True}),
        ("<member><name>d</name><value><double>1.5</double></value></member>", {"d": 1.5}),
        ("<member><name>s</name><value>plain</value></member>", {"s": "plain"}),
        (
            "<member><name>a</name><value><int>1</int></value></member>"
            "<member><name>a</name><value><int>2</int></value></member>",
            {"a": 2},
        ),
    ],
)
def test_members_decode_like_the_standard_library(member: str, expected: dict[str, Any]) -> None:
    body = _call(member)
    assert decode_request(body).params == [expected]
    if member.startswith("<member><name"):  # the standard library needs <name> first
        assert xmlrpc.client.loads(body, use_builtin_types=True)[0] == (expected,)


@pytest.mark.parametrize(
    "member, message",
    [
        ("<member><name>a</name><value><int>x</int></value></member>", "invalid <int> value"),
        ("<member><name>a</name><value><int/></value></member>", "invalid <int> value"),
        ("<member><name>a</name><value><int>1<b/></int></value></member>", "cannot contain"),
        ("<member><name>a</name><value><int>1</int>x</value></member>", "text is allowed"),
        ("<member><name>a</name><value><int>1</int></value>x</member>", "text is allowed"),
        ("<member><name>a</name></member>", "<member> elements"),
        ("<member><value>1</value><value>2</value></member>", "<member> elements"),
        ("<member><name>a<b/></name><value>1</value></member>", "<member> elements"),
        ("<member><name>a</name><name>b</name></member>", "<member> elements"),
        ("<value>1</value>", "<member> elements"),
    ],
)
def test_bad_members_keep_their_faults(member: str, message: str) -> None:
    with pytest.raises(RPCError) as caught:
        decode_request(_call(member))
    assert caught.value.code == INVALID_REQUEST
    assert message in caught.value.message


class _Name(str):
    pass


def test_encoded_members_decode_with_the_standard_library() -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    many = {f"k{i}&<>": i for i in range(600)}  # more names than are remembered
    value = [
        {"i": 1, "s": "a&b<c>\r", "f": 0.5, "b": False, "t": when, "l": [1, "x"], "n": None},
        {"i": 2**40, "d": {"x": True}, "e": [], "u": (1, 2), _Name("sub"): "v"},
        many,
        {"i": 2, "s": "", "b": True},
    ]
    with pytest.raises(RPCError):
        encode_response(value)  # 2**40 needs <i8>
    (decoded,), _ = xmlrpc.client.loads(encode_response(value, use_i8=True), use_builtin_types=True)
    expected = [dict(value[0]), dict(value[1]), many, value[3]]
    expected[1]["u"] = [1, 2]
    assert decoded == expected
