"""Scheme v2 over real HTTP: the signed ``Authorization`` header covers the
method, the path and the body, and is verified before the XML is parsed."""

from __future__ import annotations

import gzip
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from auth_helpers import AuthEnv, fault_of, make_env, post_raw

from flask_rpcenable.auth.signing import new_nonce, sign_request_v2
from flask_rpcenable.auth.verifier import MSG_FAILED


@pytest.fixture
def env(tmp_path: Path, serve: Callable[..., Any]) -> AuthEnv:
    environment = make_env(tmp_path, serve=serve, RPCENABLE_LOG_INCOMING=True)
    environment.add_user("alice")
    environment.add_user("bob", active=False)
    return environment


def body_of(method: str, *params: Any) -> bytes:
    return xmlrpc.client.dumps(params, method).encode()


def test_v2_call_succeeds(env: AuthEnv) -> None:
    proxy = env.v2_proxy("alice")
    assert proxy.auth_echo("Hi!") == "User alice says: Hi!"
    assert proxy.echo("public") == "Server says: public"
    assert env.v2_proxy("alice", path="/rpc/v2/").whoami() == "alice"
    assert env.calls == [("alice", "Hi!")]
    assert env.user("alice").last_login is not None


def test_v2_username_with_any_characters(env: AuthEnv) -> None:
    env.add_user("Zoë, ops=1")
    assert env.v2_proxy("Zoë, ops=1").auth_echo("x") == "User Zoë, ops=1 says: x"


def test_v2_multicall_is_authenticated_as_a_whole(env: AuthEnv) -> None:
    multi = xmlrpc.client.MultiCall(env.v2_proxy("alice"))
    multi.auth_echo("one")
    multi.auth_echo("two")
    assert list(multi()) == ["User alice says: one", "User alice says: two"]


def test_tampered_body_is_rejected(env: AuthEnv) -> None:
    signed = body_of("auth_echo", "pay 10")
    proxy = env.v2_proxy("alice", sign_body=signed)
    fault = fault_of(lambda: proxy.auth_echo("pay 1000"))
    assert (fault.faultCode, fault.faultString) == (406, MSG_FAILED)
    assert env.calls == []


def test_tampered_path_is_rejected(env: AuthEnv) -> None:
    # signed for the default namespace, sent to version 2
    proxy = env.v2_proxy("alice", path="/rpc/v2/", sign_path="/rpc/")
    assert fault_of(lambda: proxy.whoami()).faultCode == 406
    proxy = env.v2_proxy("alice", sign_path="/rpc/v2/")
    assert fault_of(lambda: proxy.auth_echo("x")).faultCode == 406


def test_tampered_method_is_rejected(env: AuthEnv) -> None:
    proxy = env.v2_proxy("alice", sign_method="PUT")
    assert fault_of(lambda: proxy.auth_echo("x")).faultCode == 406


def test_captured_header_cannot_be_replayed_or_reused(env: AuthEnv) -> None:
    url = env.url + "/rpc/"
    body = body_of("auth_echo", "once")
    header = sign_request_v2("alice", env.keys["alice"], "POST", "/rpc/", body)
    assert post_raw(url, body, {"Authorization": header}) == "User alice says: once"
    replay = post_raw(url, body, {"Authorization": header})
    assert isinstance(replay, xmlrpc.client.Fault) and replay.faultCode == 402
    other = post_raw(url, body_of("auth_echo", "twice"), {"Authorization": header})
    assert isinstance(other, xmlrpc.client.Fault) and other.faultCode == 406
    assert env.calls == [("alice", "once")]


def test_failure_before_parsing(env: AuthEnv) -> None:
    """A bad header is refused even when the body is not XML at all."""
    url = env.url + "/rpc/"
    body = b"this is not XML"
    bad = sign_request_v2("alice", "wrong", "POST", "/rpc/", body)
    fault = post_raw(url, body, {"Authorization": bad})
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == 406
    good = sign_request_v2("alice", env.keys["alice"], "POST", "/rpc/", body)
    fault = post_raw(url, body, {"Authorization": good})
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == -32700


def test_gzip_body_is_signed_decompressed(env: AuthEnv) -> None:
    body = body_of("auth_echo", "zipped")
    header = sign_request_v2("alice", env.keys["alice"], "POST", "/rpc/", body)
    result = post_raw(
        env.url + "/rpc/", gzip.compress(body),
        {"Authorization": header, "Content-Encoding": "gzip"},
    )
    assert result == "User alice says: zipped"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("RPCEnable-HMAC-SHA256 username=alice", 401),
        ("RPCEnable-HMAC-SHA256 username=alice, timestamp=1, nonce=short, signature=x", 401),
        ("RPCEnable-HMAC-SHA256 username=alice, timestamp=soon, nonce={n}, signature=x", 403),
        ("RPCEnable-HMAC-SHA256 username=alice, timestamp=1000, nonce={n}, signature=x", 403),
        ("RPCEnable-HMAC-SHA256 username=alice, timestamp={t}, nonce={n}, signature=x", 406),
        ("RPCEnable-HMAC-SHA256 username=" + "u" * 256 + ", timestamp={t}, nonce={n}, "
         "signature=x", 406),
    ],
)
def test_v2_fault_codes(env: AuthEnv, header: str, code: int) -> None:
    value = header.replace("{n}", new_nonce()).replace("{t}", str(int(time.time())))
    fault = post_raw(env.url + "/rpc/", body_of("echo", "x"), {"Authorization": value})
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == code, fault


@pytest.mark.parametrize("delta", [-400, 400])
def test_v2_clock_skew(env: AuthEnv, delta: int) -> None:
    body = body_of("auth_echo", "x")
    header = sign_request_v2("alice", env.keys["alice"], "POST", "/rpc/", body,
                             timestamp=int(time.time()) + delta)
    fault = post_raw(env.url + "/rpc/", body, {"Authorization": header})
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == 403


def test_v2_unknown_inactive_and_bad_key_look_the_same(env: AuthEnv) -> None:
    faults = {
        (f.faultCode, f.faultString)
        for f in (
            fault_of(lambda: env.v2_proxy("nobody", "k").auth_echo("x")),
            fault_of(lambda: env.v2_proxy("bob").auth_echo("x")),
            fault_of(lambda: env.v2_proxy("alice", "wrong key").auth_echo("x")),
        )
    }
    assert faults == {(406, MSG_FAILED)}


def test_other_authorization_schemes_are_ignored(env: AuthEnv) -> None:
    url = env.url + "/rpc/"
    result = post_raw(url, body_of("echo", "x"), {"Authorization": "Basic dXNlcjpwYXNz"})
    assert result == "Server says: x"
    fault = post_raw(url, body_of("auth_echo", "x"), {"Authorization": "Bearer abc"})
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == 401


def test_rejected_v2_request_is_logged_without_secrets(env: AuthEnv) -> None:
    import sqlalchemy as sa

    transport_proxy = env.v2_proxy("alice", "wrong key")
    fault_of(lambda: transport_proxy.auth_echo("x"))
    sent = transport_proxy._ServerProxy__transport.headers_sent[0]  # type: ignore[attr-defined]
    signature = sent.rsplit("signature=", 1)[1]
    with env.app.app_context():
        model = env.rpc.state(env.app).models.IncomingCall
        rows = env.db.session.execute(sa.select(model)).scalars().all()
    # Logged under the method called (not "-"), without the secrets.
    assert [(r.method, r.fault_code) for r in rows] == [("auth_echo", 406)]
    assert signature not in (rows[0].params or "") + (rows[0].fault_string or "")
