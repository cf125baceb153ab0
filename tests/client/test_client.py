"""XMLRPCPoint against this project's own server and the standard library's,
over real HTTP on 127.0.0.1: calls, auth (both schemes), multicall, the call
log and its redaction."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import io
import threading
import xmlrpc.client
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from client_helpers import StdlibXMLRPCServer, free_port, make_remote
from flask import Flask, request

from flask_rpcenable import RPCEnable
from flask_rpcenable.auth.signing import generate_auth_args
from flask_rpcenable.client.point import (
    REDACTED,
    ConnectError,
    XMLRPCPoint,
    looks_like_auth_args,
    redact_auth_params,
)


@pytest.fixture
def remote(make_app: Callable[..., Flask], serve: Any) -> Iterator[Any]:
    app, rpc, key = make_remote(make_app, RPCENABLE_LOG_OUTGOING=True)
    server = serve(app)

    class Remote:
        pass

    r = Remote()
    r.app, r.rpc, r.key, r.server = app, rpc, key, server
    r.url = server.url + "/rpc/"
    r.points = []

    def point(**kwargs: Any) -> XMLRPCPoint:
        p = XMLRPCPoint(kwargs.pop("url", r.url), **kwargs)
        r.points.append(p)
        return p

    r.point = point
    yield r
    for p in r.points:
        p.close()


def outgoing_rows(r: Any) -> list[Any]:
    state = r.rpc.state(r.app)
    model = state.models.OutgoingCall
    with r.app.app_context():
        rows = state.db.session.query(model).order_by(model.id).all()
        state.db.session.expunge_all()
    return rows


# -- plain calls ---------------------------------------------------------------


def test_calls_dotted_names_and_introspection(remote: Any) -> None:
    point = remote.point()
    assert point.echo("Hi!") == "Server says: Hi!"
    assert point.math.add(2, 3) == 5
    assert "math.add" in point.system.listMethods()
    assert "Server says" in point.system.methodHelp("echo")
    assert point.nothing() is None


def test_versioned_endpoint(remote: Any) -> None:
    assert remote.point(url=remote.url + "v2/").v2only() == "version two"
    with pytest.raises(xmlrpc.client.Fault) as info:
        remote.point().v2only()
    assert info.value.faultCode == -32601


def test_faults_pass_through(remote: Any) -> None:
    point = remote.point()
    with pytest.raises(xmlrpc.client.Fault) as info:
        point.no.such.method()
    assert info.value.faultCode == -32601
    with pytest.raises(xmlrpc.client.Fault) as info:
        point.math.add(1)
    assert info.value.faultCode == -32602


def test_value_types_like_serverproxy(remote: Any) -> None:
    plain = remote.point().types()
    assert isinstance(plain["when"], xmlrpc.client.DateTime)
    assert isinstance(plain["data"], xmlrpc.client.Binary)
    assert plain["data"].data == b"\x00\xff"
    builtin = remote.point(use_builtin_types=True).types()
    assert builtin == {"when": datetime.datetime(2024, 1, 2, 3, 4, 5), "data": b"\x00\xff"}
    # The same as the standard library gives.
    with xmlrpc.client.ServerProxy(remote.url, use_builtin_types=True) as proxy:
        assert proxy.types() == builtin


def test_multicall(remote: Any) -> None:
    point = remote.point()
    with point.multicall() as mc:
        mc.echo("a")
        mc.math.add(2, 3)
        mc.no_such_method()
    assert len(mc.results) == 3
    assert mc.results[0] == "Server says: a"
    assert mc.results[1] == 5
    with pytest.raises(xmlrpc.client.Fault) as info:
        mc.results[2]
    assert info.value.faultCode == -32601
    # Called form, unpacking.
    mc2 = point.multicall()
    mc2.echo("x")
    mc2.math.add(1, 1)
    echoed, total = mc2()
    assert (echoed, total) == ("Server says: x", 2)


def test_multicall_not_sent_when_the_block_raises() -> None:
    point = XMLRPCPoint(f"http://127.0.0.1:{free_port()}/")  # would be refused
    with pytest.raises(RuntimeError), point.multicall() as mc:
        mc.echo("a")
        raise RuntimeError("stop")
    assert mc.results is None


def test_connection_close_is_honoured(remote: Any) -> None:
    """Werkzeug's development server answers ``Connection: close``: the point
    then opens a connection per call and keeps none idle (keep-alive reuse is
    tested against servers that keep connections open, below and in
    test_client_transport.py)."""
    point = remote.point()
    first = point.remote_port()
    second = point.remote_port()
    assert first != second
    assert point("transport")._idle == []


def test_threads_share_a_point(remote: Any) -> None:
    point = remote.point(pool_size=8)
    errors: list[BaseException] = []
    results: list[int] = []

    def work(n: int) -> None:
        try:
            for i in range(15):
                results.append(point.math.add(n, i) - n - i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results == [0] * 90


def test_url_credentials_sent_as_basic_auth_and_hidden(remote: Any) -> None:
    seen: list[str | None] = []
    remote.app.before_request(lambda: seen.append(request.headers.get("Authorization")))
    url = remote.url.replace("http://", "http://bob:s%40cret@")
    point = remote.point(url=url)
    assert point.echo("x") == "Server says: x"
    assert seen == ["Basic Ym9iOnNAY3JldA=="]  # base64 of "bob:s@cret"
    assert "s%40cret" not in repr(point) and "bob" not in point.url


def test_item_access_for_shadowed_names(stdlib_server: StdlibXMLRPCServer) -> None:
    with XMLRPCPoint(stdlib_server.url) as point:
        assert point["add"](1, 2) == 3
        with pytest.raises(xmlrpc.client.Fault, match="close"):
            point["close"]()  # the remote method, not XMLRPCPoint.close
        with point.multicall() as mc:
            mc["add"](2, 2)
        assert list(mc.results) == [4]


def test_invalid_method_name_refused_before_sending() -> None:
    point = XMLRPCPoint(f"http://127.0.0.1:{free_port()}/")  # would be refused
    with pytest.raises(ValueError, match="invalid XML-RPC method name"):
        point._call("a<b>", ())


# -- authentication --------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["v1", "v2"])
def test_auth_both_schemes(remote: Any, scheme: str) -> None:
    point = remote.point(auth=("alice", remote.key), auth_scheme=scheme)
    assert point.auth_echo("hi") == "User alice says: hi"
    assert point.auth_echo("again") == "User alice says: again"  # fresh nonce each call
    # Introspection works with auth on (no auth arguments prepended).
    assert "auth_echo" in point.system.listMethods()
    with point.multicall() as mc:
        mc.auth_echo("m1")
        mc.auth_echo("m2")
        mc.echo("plain")
    assert mc.results[0] == "User alice says: m1"
    assert mc.results[1] == "User alice says: m2"
    if scheme == "v2":
        # The header authenticates the request; public methods ignore it.
        assert mc.results[2] == "Server says: plain"
        assert point.echo("public") == "Server says: public"
    else:
        # v1 puts the four auth parameters in front of every call: a public
        # method then gets too many parameters (documented).
        with pytest.raises(xmlrpc.client.Fault) as info:
            mc.results[2]
        assert info.value.faultCode == -32602


@pytest.mark.parametrize("scheme", ["v1", "v2"])
def test_auth_wrong_key_is_fault_406(remote: Any, scheme: str) -> None:
    point = remote.point(auth=("alice", "not-the-key"), auth_scheme=scheme)
    with pytest.raises(xmlrpc.client.Fault) as info:
        point.auth_echo("hi")
    assert info.value.faultCode == 406


def test_unauthenticated_call_refused(remote: Any) -> None:
    with pytest.raises(xmlrpc.client.Fault) as info:
        remote.point().auth_echo("hi")
    assert info.value.faultCode in (401, 406)


def test_v2_header_signs_the_exact_body(remote: Any) -> None:
    """The Authorization header, recomputed independently from what arrived."""
    seen: list[tuple[str, bytes]] = []
    inner = remote.app.wsgi_app

    def capture(environ: dict[str, Any], start_response: Any) -> Any:
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        seen.append((environ["HTTP_AUTHORIZATION"], body))
        environ["wsgi.input"] = io.BytesIO(body)
        return inner(environ, start_response)

    remote.app.wsgi_app = capture  # type: ignore[method-assign]

    point = remote.point(auth=("alice", remote.key))
    assert point.auth_echo("body") == "User alice says: body"
    header, body = seen[0]
    scheme, _, rest = header.partition(" ")
    assert scheme == "RPCEnable-HMAC-SHA256"
    fields = dict(item.strip().split("=", 1) for item in rest.split(","))
    message = "\n".join([
        "RPCEnable-HMAC-SHA256", "POST", "/rpc/", hashlib.sha256(body).hexdigest(),
        fields["nonce"], fields["timestamp"], "alice",
    ])
    expected = hmac.new(remote.key.encode(), message.encode(), hashlib.sha256).hexdigest()
    assert fields["signature"] == expected
    assert fields["username"] == "alice"


def test_param_hook_django_recipe(remote: Any) -> None:
    calls: list[tuple[Any, ...]] = []

    def hook(params: tuple[Any, ...]) -> tuple[Any, ...]:
        calls.append(params)
        return generate_auth_args("alice", remote.key) + params

    point = remote.point(param_hook=hook)
    assert point.auth_echo("hooked") == "User alice says: hooked"
    assert calls == [("hooked",)]
    point.system.listMethods()  # introspection: the hook is not applied
    assert calls == [("hooked",)]


def test_param_hook_may_rewrite_params(remote: Any) -> None:
    point = remote.point(param_hook=lambda p: tuple(x * 2 for x in p))
    assert point.math.add(1, 2) == 6


# -- the call log ----------------------------------------------------------------


def test_logged_rows(remote: Any) -> None:
    point = remote.point(url=remote.url.replace("http://", "http://bob:pw@"))
    with remote.app.app_context():
        point.math.add(2, 3)
        with pytest.raises(xmlrpc.client.Fault):
            point.missing("x")
    rows = outgoing_rows(remote)
    assert [r.method for r in rows] == ["math.add", "missing"]
    ok, fault = rows
    assert ok.ok and ok.params == "[2, 3]" and ok.response == "5"
    assert ok.url == remote.url  # no credentials
    assert ok.duration_ms >= 0 and ok.fault_code is None
    assert not fault.ok and fault.fault_code == -32601
    assert "missing" in fault.fault_string


def test_logged_transport_error(remote: Any) -> None:
    point = XMLRPCPoint(f"http://127.0.0.1:{free_port()}/rpc/", timeout=5)
    with remote.app.app_context(), pytest.raises(ConnectError):
        point.echo("x")
    (row,) = outgoing_rows(remote)
    assert not row.ok and row.fault_code is None
    assert "ConnectError" in row.exception and "could not connect" in row.exception


@pytest.mark.parametrize("scheme", ["v1", "v2"])
def test_auth_arguments_redacted_in_log(remote: Any, scheme: str) -> None:
    point = remote.point(auth=("alice", remote.key), auth_scheme=scheme)
    with remote.app.app_context():
        point.auth_echo("secret-free")
        with point.multicall() as mc:
            mc.auth_echo("in multicall")
    single, multi = outgoing_rows(remote)
    text = single.params + multi.params
    assert remote.key not in text
    if scheme == "v1":
        assert single.params == '["***", "***", "***", "***", "secret-free"]'
        assert '"***", "***", "***", "***", "in multicall"' in multi.params
    else:
        assert single.params == '["secret-free"]'  # the header is not logged
    assert multi.method == "system.multicall"


def test_param_hook_auth_redacted_in_log(remote: Any) -> None:
    point = remote.point(param_hook=lambda p: generate_auth_args("alice", remote.key) + p)
    with remote.app.app_context():
        point.auth_echo("hooked")
    (row,) = outgoing_rows(remote)
    assert row.params == '["***", "***", "***", "***", "hooked"]'


def test_no_log_outside_app_context_or_when_off(
    remote: Any, make_app: Callable[..., Flask]
) -> None:
    point = remote.point()
    assert point.echo("no context") == "Server says: no context"
    with remote.app.app_context():
        remote.point(log=False).echo("log=False")
    assert outgoing_rows(remote) == []
    # An app with RPCENABLE_LOG_OUTGOING off (the default) logs nothing either.
    quiet_rpc = RPCEnable()
    quiet = make_app()
    quiet_rpc.init_app(quiet)
    with quiet.app_context():
        quiet_rpc.state(quiet).db.create_all()
        assert point.echo("quiet") == "Server says: quiet"
        model = quiet_rpc.state(quiet).models.OutgoingCall
        assert quiet_rpc.state(quiet).db.session.query(model).count() == 0


def test_redaction_helpers() -> None:
    args = generate_auth_args("alice", "key")
    assert looks_like_auth_args(args + ("x",))
    assert redact_auth_params(args + ("x",)) == (REDACTED,) * 4 + ("x",)
    assert redact_auth_params(("a", 1, "b", "c")) == ("a", 1, "b", "c")
    not_hex = (args[0], args[1], args[2], "z" * 64)
    assert not looks_like_auth_args(not_hex)
    assert not looks_like_auth_args((args[0], True, args[2], args[3]))
    assert looks_like_auth_args((args[0], str(args[1]), args[2], args[3]))
    assert redact_auth_params((1, 2), known=True) == (REDACTED, REDACTED)


# -- the standard library's server -------------------------------------------------


@pytest.fixture
def stdlib_server() -> Iterator[StdlibXMLRPCServer]:
    server = StdlibXMLRPCServer()
    yield server
    server.stop()


def test_against_simplexmlrpcserver(stdlib_server: StdlibXMLRPCServer) -> None:
    with XMLRPCPoint(stdlib_server.url) as point:
        assert point.add(2, 40) == 42
        assert point.echo_args(None, [1, "a"], {"k": 1.5}) == [None, [1, "a"], {"k": 1.5}]
        assert point.echo(xmlrpc.client.Binary(b"\x01\x02")).data == b"\x01\x02"
        assert "add" in point.system.listMethods()
        with point.multicall() as mc:
            mc.add(1, 2)
            mc.add(3, 4)
        assert list(mc.results) == [3, 7]
        with pytest.raises(xmlrpc.client.Fault):
            point.missing()
    # Four calls and a multicall over one kept-alive connection.
    assert stdlib_server.connections == 1
    point.close()
    with point:
        assert point.add(1, 1) == 2  # closed idle connections: a new one
    assert stdlib_server.connections == 2


def test_http10_server_gets_a_connection_per_call() -> None:
    server = StdlibXMLRPCServer(keep_alive=False)
    try:
        with XMLRPCPoint(server.url) as point:
            assert point.add(1, 2) == 3
            assert point.add(3, 4) == 7
        assert server.connections == 2
    finally:
        server.stop()


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="scheme"):
        XMLRPCPoint("ftp://127.0.0.1/")
    with pytest.raises(ValueError, match="auth_scheme"):
        XMLRPCPoint("http://127.0.0.1/", auth=("a", "b"), auth_scheme="v3")
    with pytest.raises(TypeError, match="auth"):
        XMLRPCPoint("http://127.0.0.1/", auth=("a",))  # type: ignore[arg-type]
    point = XMLRPCPoint("http://127.0.0.1:1/rpc?x=1")
    assert point.url == "http://127.0.0.1:1/rpc?x=1"
    assert repr(point) == "<XMLRPCPoint for http://127.0.0.1:1/rpc?x=1>"
    with pytest.raises(AttributeError):
        point.__deepcopy__  # noqa: B018
