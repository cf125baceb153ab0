"""Every XML-RPC type, over a real HTTP server, with Python's own client."""

from __future__ import annotations

import contextlib
import datetime
import xmlrpc.client
from typing import Any

import pytest
from core_helpers import call_body, new_app, post, proxy, raw_call, running

from flask_rpcenable import RPCEnable
from flask_rpcenable.errors import INTERNAL_ERROR, INVALID_REQUEST

BIG = 2**40
JAN2 = datetime.datetime(2024, 1, 2, 3, 4, 5)


def make_rpc() -> RPCEnable:
    rpc = RPCEnable()

    @rpc.register
    def echo(value: Any = "") -> Any:
        return value

    @rpc.register
    def crlf() -> str:
        return "a\r\nb\rc"

    @rpc.register
    def odd_datetime() -> xmlrpc.client.DateTime:
        return xmlrpc.client.DateTime("</dateTime.iso8601><string>injected")

    @rpc.register
    def nothing() -> None:
        return None

    @rpc.register
    def big(exponent: int = 40) -> int:
        return 2**exponent

    @rpc.register
    def types_of(*values: Any) -> list[str]:
        return [type(v).__name__ for v in values]

    return rpc


@pytest.fixture
def served(tmp_path):
    """Start a server with the given config; yields its /rpc/ URL."""
    with contextlib.ExitStack() as stack:

        def start(**config: Any) -> str:
            app = new_app(tmp_path, **config)
            make_rpc().init_app(app)
            return stack.enter_context(running(app)) + "/rpc/"

        yield start


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    app = new_app(tmp_path_factory.mktemp("wire"))
    make_rpc().init_app(app)
    with running(app) as base:
        yield base + "/rpc/"


ROUND_TRIP = [
    0,
    -(2**31),
    2**31 - 1,
    True,
    False,
    "plain",
    "unicode: é ß 中文 ✓ 😀",
    "xml specials: <tag> & 'quote' \"double\" ]]> &amp;",
    "line\nendings\tand tabs\n",
    "",
    "   spaces kept   ",
    1.5,
    -0.0,
    1e300,
    -2.5e-300,
    datetime.datetime(2024, 2, 29, 23, 59, 58),
    datetime.datetime(1900, 1, 1, 0, 0, 0),
    b"",
    b"\x00\x01\xff binary \n",
    bytes(range(256)) * 40,
    [],
    [1, "two", 3.0, [4, [5, []]], {"six": 6}],
    {},
    {"name": "x", "nested": {"list": [1, 2], "é<&>": "ok"}, "empty": ""},
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=lambda v: type(v).__name__)
def test_round_trip(url, value):
    with proxy(url) as server:
        assert server.echo(value) == value
        # the types survive too (bool is not int, bytes are not str)
        assert type(server.echo(value)) is type(value)


def test_round_trip_all_in_one_struct(url):
    value = {f"k{i}": v for i, v in enumerate(ROUND_TRIP)}
    with proxy(url) as server:
        assert server.echo(value) == value


def test_carriage_returns_survive_in_responses(url):
    """Python's client does not escape \\r in requests, but the server does in replies."""
    with proxy(url) as server:
        assert server.crlf() == "a\r\nb\rc"


def test_datetime_wrapper_value_is_escaped(url):
    """The stdlib would write a DateTime's string unescaped into the document."""
    with xmlrpc.client.ServerProxy(url) as server:
        got = server.odd_datetime()
    assert isinstance(got, xmlrpc.client.DateTime)
    assert got.value == "</dateTime.iso8601><string>injected"


def test_stdlib_wrapper_types_without_builtin_types(url):
    """DateTime and Binary objects, as older clients use them."""
    when = xmlrpc.client.DateTime(datetime.datetime(2001, 2, 3, 4, 5, 6))
    blob = xmlrpc.client.Binary(b"\x00abc")
    with xmlrpc.client.ServerProxy(url) as server:
        got_when = server.echo(when)
        got_blob = server.echo(blob)
    assert isinstance(got_when, xmlrpc.client.DateTime) and got_when == when
    assert isinstance(got_blob, xmlrpc.client.Binary) and got_blob.data == b"\x00abc"


def test_server_sees_python_types(url):
    with proxy(url) as server:
        got = server.types_of(1, True, "s", 1.0, datetime.datetime(2020, 1, 1), b"b", [], {}, None)
    assert got == [
        "int", "bool", "str", "float", "datetime", "bytes", "list", "dict", "NoneType"
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<int>42</int>", 42),
        ("<i4>-7</i4>", -7),
        ("<i4> +7 </i4>", 7),
        ("<i8>1099511627776</i8>", BIG),
        ("<ex:i8 xmlns:ex='http://ws.apache.org/xmlrpc/namespaces/extensions'>-5</ex:i8>", -5),
        ("<boolean>1</boolean>", True),
        ("<boolean>0</boolean>", False),
        ("<string>s</string>", "s"),
        ("<string/>", ""),
        ("untyped text", "untyped text"),
        ("", ""),
        ("<double>-1.25</double>", -1.25),
        ("<double>1E3</double>", 1000.0),
        ("<dateTime.iso8601>20240102T03:04:05</dateTime.iso8601>", JAN2),
        ("<dateTime.iso8601>2024-01-02T03:04:05</dateTime.iso8601>", JAN2),
        ("<dateTime.iso8601>20240102T030405</dateTime.iso8601>", JAN2),
        ("<base64>aGk=</base64>", b"hi"),
        ("<base64>\n  aG\n  k=\n</base64>", b"hi"),
        ("<base64/>", b""),
        ("<array><data/></array>", []),
        ("<struct/>", {}),
        (
            "<struct><member><name>a</name><value><int>1</int></value></member></struct>",
            {"a": 1},
        ),
        ("<nil/>", None),
        ("<ex:nil xmlns:ex='http://ws.apache.org/xmlrpc/namespaces/extensions'/>", None),
    ],
)
def test_raw_values(url, raw, expected):
    reply = post(url, raw_call("echo", raw), {"User-Agent": "Python-xmlrpc/3"})
    assert reply.loads() == expected


def test_nil_allowed_by_default(url):
    with proxy(url) as server:
        assert server.echo(None) is None
        assert server.nothing() is None
        assert server.echo([None, {"n": None}]) == [None, {"n": None}]


def test_nil_refused_when_allow_none_is_off(served):
    url = served(RPCENABLE_ALLOW_NONE=False)
    with proxy(url) as server:
        with pytest.raises(xmlrpc.client.Fault) as request_nil:
            server.echo(None)
        with pytest.raises(xmlrpc.client.Fault) as result_nil:
            server.nothing()
        # the server still answers
        assert server.echo("next") == "next"
    assert request_nil.value.faultCode == INVALID_REQUEST
    assert "nil" in request_nil.value.faultString
    assert result_nil.value.faultCode == INTERNAL_ERROR
    assert "RPCENABLE_ALLOW_NONE" in result_nil.value.faultString


# -- i8 ---------------------------------------------------------------------


def test_i8_auto_python_client_reads_i8(url):
    """Python's client announces itself in User-Agent and reads <i8>."""
    with proxy(url) as server:
        assert server.big(40) == BIG
        assert server.big(62) == 2**62
        assert server.echo(-(2**31)) == -(2**31)


def test_i8_auto_limits(url):
    with proxy(url) as server:
        assert server.big(62) == 2**62
        with pytest.raises(xmlrpc.client.Fault) as excinfo:
            server.big(63)
        assert server.echo("still up") == "still up"
    assert excinfo.value.faultCode == INTERNAL_ERROR


def test_i8_auto_unknown_client_gets_a_fault_not_a_value_it_cannot_read(url):
    reply = post(url, call_body("big", 40))
    fault = reply.fault()
    assert fault.faultCode == INTERNAL_ERROR
    assert "RPCENABLE_I8" in fault.faultString
    assert b"<i8>" not in reply.body
    # i4 values are fine for every client
    assert post(url, call_body("big", 30)).loads() == 2**30


def test_i8_auto_request_with_i8_means_the_client_reads_it(url):
    reply = post(url, raw_call("echo", "<i8>1099511627776</i8>"))
    assert reply.loads() == BIG
    assert b"<i8>1099511627776</i8>" in reply.body


def test_i8_auto_apache_client(url):
    reply = post(url, call_body("big", 40), {"User-Agent": "Apache XML RPC 3.1.3 (Sun HTTP)"})
    assert reply.loads() == BIG


def test_i8_always(served):
    url = served(RPCENABLE_I8="always")
    reply = post(url, call_body("big", 40))
    assert b"<i8>1099511627776</i8>" in reply.body
    assert reply.loads() == BIG
    # outside i8 is still a fault
    assert post(url, call_body("big", 64)).fault().faultCode == INTERNAL_ERROR


def test_i8_never(served):
    url = served(RPCENABLE_I8="never")
    with proxy(url) as server:
        with pytest.raises(xmlrpc.client.Fault) as excinfo:
            server.big(40)
        assert server.big(30) == 2**30
    assert excinfo.value.faultCode == INTERNAL_ERROR


# -- encoding ---------------------------------------------------------------


def test_response_encoding_setting(served):
    url = served(RPCENABLE_ENCODING="iso-8859-1")
    text = "café ✓ <&>"
    reply = post(url, call_body("echo", text))
    assert reply.headers["Content-Type"] == "text/xml; charset=iso-8859-1"
    assert reply.body.startswith(b"<?xml version='1.0' encoding='iso-8859-1'?>")
    assert "café".encode("latin-1") in reply.body  # a real latin-1 byte, not UTF-8
    assert b"&#10003;" in reply.body  # outside latin-1: a character reference
    with proxy(url) as server:
        assert server.echo(text) == text


def test_request_in_latin1_is_read_right(url):
    body = (
        "<?xml version='1.0' encoding='ISO-8859-1'?><methodCall><methodName>echo"
        "</methodName><params><param><value><string>café</string></value></param>"
        "</params></methodCall>"
    ).encode("latin-1")
    assert post(url, body).loads() == "café"


def test_default_response_is_utf8(url):
    reply = post(url, call_body("echo", "é"))
    assert reply.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert "é".encode() in reply.body
