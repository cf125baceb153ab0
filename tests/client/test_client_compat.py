"""XMLRPCPoint takes xmlrpc.client.ServerProxy's constructor arguments, as
django-rpcenable's XMLRPCPoint (a ServerProxy subclass) did: the positional
order, ``uri=``, ``verbose``, ``transport=`` and a URL without a path. Real
HTTP on 127.0.0.1 against this project's server and the standard library's."""

from __future__ import annotations

import json
import xmlrpc.client
from collections.abc import Iterator
from typing import Any

import pytest
from client_helpers import StdlibXMLRPCServer

from flask_rpcenable.auth.signing import generate_auth_args
from flask_rpcenable.client.point import REDACTED, XMLRPCPoint


class RecordingTransport(xmlrpc.client.Transport):
    """The standard library's transport, noting what it was asked to do."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests: list[tuple[str, str, bool]] = []
        self.closed = 0

    def request(self, host: str, handler: str, request_body: Any, verbose: bool = False) -> Any:
        self.requests.append((host, handler, verbose))
        return super().request(host, handler, request_body, verbose)

    def close(self) -> None:
        self.closed += 1
        super().close()




@pytest.fixture
def stdlib_server() -> Iterator[StdlibXMLRPCServer]:
    """SimpleXMLRPCServer answering only at /RPC2 (allow_none, builtin types)."""
    server = StdlibXMLRPCServer()
    yield server
    server.stop()


def outgoing(r: Any) -> list[tuple[str, Any, Any]]:
    state = r.rpc.state(r.app)
    model = state.models.OutgoingCall
    with r.app.app_context():
        rows = state.db.session.query(model).order_by(model.id).all()
        return [(row.method, json.loads(row.params), row.response) for row in rows]


def test_serverproxy_positional_order(remote: Any, stdlib_server: StdlibXMLRPCServer) -> None:
    # (uri, transport, encoding, verbose, allow_none, use_datetime, use_builtin_types)
    with XMLRPCPoint(remote.url, None, "utf-8", False, False, False, True) as point:
        assert point.types()["data"] == b"\x00\xff"  # use_builtin_types
        with pytest.raises(TypeError, match="cannot marshal None"):  # allow_none=False
            point.echo(None)
    with XMLRPCPoint(remote.url, None, "iso-8859-1") as point:  # encoding, as declared
        assert point.echo("h\u00e9llo \u20ac") == "Server says: h\u00e9llo \u20ac"
    with XMLRPCPoint(remote.url, None, None, False, True, True) as point:
        assert point.types()["when"].year == 2024  # use_datetime: a datetime
    # allow_none defaults to True here (ServerProxy: False); False refuses
    # before anything is sent.
    with XMLRPCPoint(stdlib_server.url) as point:
        assert point.echo(None) is None
    before = stdlib_server.connections
    with XMLRPCPoint(stdlib_server.url, None, None, False, False) as point, \
            pytest.raises(TypeError):
        point.echo(None)
    assert stdlib_server.connections == before


def test_serverproxy_keyword_names(remote: Any) -> None:
    with XMLRPCPoint(uri=remote.url, allow_none=False, use_builtin_types=True,
                     headers=[("X-Trace", "1")], verbose=False) as point:
        assert point.echo("kw") == "Server says: kw"
        assert point.types()["data"] == b"\x00\xff"
    with pytest.raises(TypeError, match="once"):
        XMLRPCPoint(remote.url, uri=remote.url)
    with pytest.raises(TypeError, match="endpoint URL"):
        XMLRPCPoint()


def test_url_without_path_posts_to_rpc2(stdlib_server: StdlibXMLRPCServer) -> None:
    bare = stdlib_server.url.removesuffix("/RPC2")
    with XMLRPCPoint(bare) as point:
        assert point.add(2, 3) == 5
    transport = RecordingTransport()
    with XMLRPCPoint(bare, transport) as point:
        assert point.add(4, 5) == 9
    assert transport.requests[0][1] == "/RPC2"


def test_verbose_prints_the_exchange(remote: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with XMLRPCPoint(remote.url, None, None, True) as point:
        assert point.echo("loud") == "Server says: loud"
    out = capsys.readouterr().out
    assert "send: b'POST /rpc/ HTTP/1.1" in out
    assert "reply: 'HTTP/1." in out and " 200 " in out
    assert "Server says: loud" in out  # the body: line
    with XMLRPCPoint(remote.url) as point:
        point.echo("quiet")
    assert capsys.readouterr().out == ""


def test_user_transport_is_used_and_logged(remote: Any) -> None:
    transport = RecordingTransport()
    point = XMLRPCPoint(remote.url, transport=transport)
    assert point("transport") is transport
    with remote.app.app_context():
        assert point.echo("via transport") == "Server says: via transport"
        assert point.math.add(1, 2) == 3
        with pytest.raises(xmlrpc.client.Fault) as caught:
            point.missing()
        assert caught.value.faultCode == -32601
        with point.multicall() as mc:
            mc.math.add(2, 2)
            mc.echo("m")
        assert list(mc.results) == [4, "Server says: m"]
    host = remote.url.split("/")[2]
    assert transport.requests[0] == (host, "/rpc/", False)
    assert len(transport.requests) == 4
    assert [row[:2] for row in outgoing(remote)[:3]] == [
        ("echo", ["via transport"]), ("math.add", [1, 2]), ("missing", []),
    ]
    point.close()
    assert transport.closed == 1


def test_user_transport_with_v1_auth_param_hook_and_verbose(remote: Any) -> None:
    transport = RecordingTransport()
    point = XMLRPCPoint(remote.url, transport, None, True,
                        auth=("alice", remote.key), auth_scheme="v1")
    with remote.app.app_context():
        assert point.auth_echo("hi") == "User alice says: hi"
    assert transport.requests[0][2] is True  # verbose passed on, as ServerProxy does
    assert outgoing(remote)[0][1] == [REDACTED] * 4 + ["hi"]

    hooked = XMLRPCPoint(
        remote.url, transport=RecordingTransport(),
        param_hook=lambda params: generate_auth_args("alice", remote.key) + params,
    )
    assert hooked.auth_echo("hook") == "User alice says: hook"


def test_user_transport_refuses_what_cannot_apply(remote: Any) -> None:
    transport = RecordingTransport()
    for options in ({"timeout": 5}, {"connect_timeout": 1}, {"verify": False},
                    {"max_response_size": 10}, {"max_depth": 3}, {"pool_size": 1}):
        with pytest.raises(TypeError, match="own HTTP transport"):
            XMLRPCPoint(remote.url, transport=transport, **options)
    with pytest.raises(ValueError, match="v2"):
        XMLRPCPoint(remote.url, transport=transport, auth=("alice", remote.key))
    with pytest.raises(TypeError, match="request"):
        XMLRPCPoint(remote.url, transport=object())
    # What ServerProxy ignores with a transport is ignored here too.
    point = XMLRPCPoint(remote.url, transport, use_builtin_types=True, headers=[("X", "1")])
    assert isinstance(point.types()["data"], xmlrpc.client.Binary)
    assert transport.requests
