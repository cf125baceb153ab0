"""What a call-log row holds, on SQLite and on a real PostgreSQL server: every outcome of an
incoming call, multicall entries, authenticated calls, redacted and cut values, the remote
address and the duration; and the rows of outgoing calls."""

from __future__ import annotations

import datetime
import json
import time
import xmlrpc.client
from collections.abc import Callable
from typing import Any

from flask import Flask
from log_app import LogApp
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_rpcenable import RPCEnable
from flask_rpcenable.auth.signing import compute_signature, new_nonce
from flask_rpcenable.auth.users import create_api_user
from flask_rpcenable.calllog.models import as_utc
from flask_rpcenable.calllog.recorder import record_outgoing

MakeLogApp = Callable[..., LogApp]


def test_success_row(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    before = datetime.datetime.now(datetime.timezone.utc)
    assert log.call("echo", "Hi!") == "Server says: Hi!"
    after = datetime.datetime.now(datetime.timezone.utc)
    [row] = log.rows()
    assert row.method == "echo"
    assert row.version is None and row.protocol == "xmlrpc" and row.path == "/rpc/"
    assert json.loads(row.params) == ["Hi!"]
    assert json.loads(row.result) == "Server says: Hi!"
    assert row.ok is True and row.fault_code is None and row.traceback is None
    assert isinstance(row.duration_ms, float) and row.duration_ms >= 0
    assert row.remote_addr == "127.0.0.1"
    assert row.request_size and row.request_size > 50
    assert row.username is None and row.multicall_index is None
    assert len(row.request_id) == 32
    created = as_utc(row.created_at)
    assert created is not None and before - datetime.timedelta(seconds=1) <= created <= after


def test_versioned_call_and_faults(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    assert log.call("math.add", 2, 3, path="/rpc/v2/") == 5
    refused = log.call("refuse")
    assert isinstance(refused, xmlrpc.client.Fault) and refused.faultCode == 42
    missing = log.call("no.such.method")
    assert isinstance(missing, xmlrpc.client.Fault) and missing.faultCode == -32601
    bad_params = log.call("echo", 1, 2, 3)
    assert isinstance(bad_params, xmlrpc.client.Fault) and bad_params.faultCode == -32602
    add, refuse, nothing, bad = log.rows()
    assert (add.method, add.version, json.loads(add.result)) == ("math.add", 2, 5)
    assert (refuse.ok, refuse.fault_code, refuse.fault_string) == (False, 42, "refused on purpose")
    assert refuse.result is None
    assert (nothing.method, nothing.fault_code) == ("no.such.method", -32601)
    assert (bad.fault_code, json.loads(bad.params)) == (-32602, [1, 2, 3])


def test_unexpected_exception_keeps_traceback_in_log_only(
    db_url: str, make_log_app: MakeLogApp
) -> None:
    log = make_log_app(db_url)
    fault = log.call("explode")
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == -32500
    assert "secret internal detail" not in fault.faultString
    [row] = log.rows()
    assert row.fault_code == -32500 and row.ok is False
    assert "ValueError: secret internal detail" in row.traceback


def test_rejected_request_is_logged_as_dash(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    response = log.post(b"<methodCall><oops")
    assert b"-32700" in response.data
    [row] = log.rows()
    assert row.method == "-" and row.fault_code == -32700 and row.ok is False
    assert json.loads(row.params) == []
    assert row.request_size == len(b"<methodCall><oops")


def test_multicall_logs_each_sub_call_and_the_envelope(
    db_url: str, make_log_app: MakeLogApp
) -> None:
    log = make_log_app(db_url)
    calls = [
        {"methodName": "echo", "params": ["a"]},
        {"methodName": "refuse", "params": []},
        {"methodName": "take", "params": [{"token": "t0ps3cret", "n": 1}]},
    ]
    result = log.call("system.multicall", calls)
    assert result[0] == ["Server says: a"] and result[1]["faultCode"] == 42
    rows = log.rows()
    assert len(rows) == 4
    subs = sorted((r for r in rows if r.multicall_index is not None),
                  key=lambda r: r.multicall_index)
    [envelope] = [r for r in rows if r.multicall_index is None]
    assert [r.method for r in subs] == ["echo", "refuse", "take"]
    assert [r.multicall_index for r in subs] == [0, 1, 2]
    assert subs[1].fault_code == 42
    assert json.loads(subs[2].params) == [{"token": "***", "n": 1}]
    assert envelope.method == "system.multicall" and envelope.ok
    assert json.loads(envelope.params) == [{"methods": ["echo", "refuse", "take"]}]
    assert json.loads(envelope.result) == {"results": 2, "faults": 1}
    assert "t0ps3cret" not in envelope.params + (envelope.result or "")
    assert {r.request_id for r in rows} == {envelope.request_id}
    # another request gets another id
    log.call("echo", "b")
    assert log.rows()[-1].request_id != envelope.request_id


def test_refused_multicall_entries_get_a_row_each(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    calls: list[Any] = [
        {"methodName": "echo", "params": ["a"]},
        {"methodName": "system.multicall", "params": [[{"methodName": "echo"}]]},
        "not a struct",
        {"params": ["no method name"]},
    ]
    result = log.call("system.multicall", calls)
    assert result[0] == ["Server says: a"]
    assert [r["faultCode"] for r in result[1:]] == [-32600, -32600, -32600]
    subs = sorted((r for r in log.rows() if r.multicall_index is not None),
                  key=lambda r: r.multicall_index)
    assert [(r.method, r.multicall_index) for r in subs] == [
        ("echo", 0), ("system.multicall", 1), ("-", 2), ("-", 3)
    ]
    assert [r.fault_code for r in subs] == [None, -32600, -32600, -32600]
    assert "cannot be nested" in subs[1].fault_string
    assert all(json.loads(r.params) == [] for r in subs[1:])


def test_authenticated_and_failed_calls(db_url: str, make_log_app: MakeLogApp) -> None:
    """The real HMAC authenticator's redaction, not a stub's: no credential is stored."""

    def setup(app: Flask, rpc: RPCEnable) -> None:
        @rpc.register
        @rpc.auth
        def whoami(user: Any, var: str = "") -> str:
            return var

    log = make_log_app(db_url, setup=setup)
    with log.app.app_context():
        _, key = create_api_user(log.db, log.state.models.APIUser, "alice")
    stamp = int(time.time())
    good_nonce, bad_nonce = new_nonce(), new_nonce()
    good = [good_nonce, stamp, "alice", compute_signature(good_nonce, stamp, "alice", key)]
    forged = [bad_nonce, stamp, "alice", compute_signature(bad_nonce, stamp, "alice", "x" * 40)]
    assert log.call("whoami", *good, "x") == "x"
    failed = log.call("whoami", *forged, "x")
    assert isinstance(failed, xmlrpc.client.Fault) and failed.faultCode == 406
    ok_row, failed_row = log.rows()
    assert ok_row.username == "alice"
    assert json.loads(ok_row.params) == ["***", "***", "***", "***", "x"]
    assert failed_row.username is None and failed_row.fault_code == 406
    assert json.loads(failed_row.params) == ["***", "***", "***", "***", "x"]
    for row in (ok_row, failed_row):
        for secret in (good_nonce, bad_nonce, good[3], forged[3], key):
            assert secret not in row.params


def test_params_redacted_and_cut(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url, RPCENABLE_LOG_MAX_CHARS=300)
    log.call("take", {"user": "bob", "api_key": "AK-123", "nested": {"Password": "pw"}})
    log.call("take", "x" * 5000)
    log.call("take", xmlrpc.client.Binary(b"\x00" * 1000))
    log.call("take", xmlrpc.client.DateTime(datetime.datetime(2024, 1, 2, 3, 4, 5)))
    secret, long, binary, when = log.rows()
    assert json.loads(secret.params) == [
        {"user": "bob", "api_key": "***", "nested": {"Password": "***"}}
    ]
    assert len(long.params) <= 300 and "[cut: " in long.params
    assert "<binary 1000 bytes, base64: " in binary.params
    assert json.loads(when.params) == ["2024-01-02T03:04:05"]


def test_remote_address_behind_proxyfix_ipv6(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    log.app.wsgi_app = ProxyFix(log.app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    log.call("echo", headers={"X-Forwarded-For": "2001:db8:85a3::8a2e:370:7334"})
    log.call("echo", headers={"X-Forwarded-For": "203.0.113.9"})
    assert [r.remote_addr for r in log.rows()] == ["2001:db8:85a3::8a2e:370:7334", "203.0.113.9"]


def test_record_outgoing(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    # No app context: silently nothing.
    record_outgoing(url="http://h/", method="m", params=[], duration_ms=1.0)
    with log.app.app_context():
        record_outgoing(
            url="https://bob:hunter2@api.example.org/rpc/?signature=abc&page=2",
            method="remote.echo",
            params=["***", "***", "***", "***", {"password": "pw", "q": "hello"}],
            response={"ok": True, "token": "T"},
            duration_ms=12.5,
        )
        record_outgoing(
            url="http://api.example.org/rpc/",
            method="remote.fail",
            params=[],
            fault_code=406,
            fault_string="Authentication failed",
            duration_ms=3.0,
        )
        record_outgoing(
            url="http://api.example.org/rpc/",
            method="remote.down",
            params=[],
            exception="ConnectionRefusedError: [Errno 111] Connection refused",
            duration_ms=0.5,
        )
    ok, fault, error = log.rows(log.OutgoingCall)
    assert ok.url == "https://api.example.org/rpc/?signature=***&page=2"
    assert "hunter2" not in ok.url and "bob" not in ok.url
    assert json.loads(ok.params) == ["***", "***", "***", "***", {"password": "***", "q": "hello"}]
    assert json.loads(ok.response) == {"ok": True, "token": "***"}
    assert ok.ok and ok.duration_ms == 12.5
    assert (fault.ok, fault.fault_code, fault.fault_string) == (False, 406, "Authentication failed")
    assert fault.response is None
    assert error.ok is False and "Connection refused" in error.exception


def test_real_auth_component_success_and_failure(db_url: str, make_log_app: MakeLogApp) -> None:
    from flask_rpcenable import generate_auth_args
    from flask_rpcenable.auth.users import create_api_user

    def setup(app: Flask, rpc: RPCEnable) -> None:
        @rpc.register
        @rpc.auth
        def auth_echo(user: Any, var: str = "") -> str:
            return f"User {user.username} says: {var}"

    log = make_log_app(db_url, setup=setup)
    with log.app.app_context():
        _, api_key = create_api_user(log.db, log.state.models.APIUser, "alice")
    good = list(generate_auth_args("alice", api_key))
    assert log.call("auth_echo", *good, "hi") == "User alice says: hi"
    forged = list(generate_auth_args("alice", "not-the-key"))
    fault = log.call("auth_echo", *forged, "hi")
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == 406
    # a multicall with a guarded sub-call: its auth arguments are redacted everywhere
    log.call("system.multicall", [
        {"methodName": "auth_echo", "params": [*generate_auth_args("alice", api_key), "m"]},
    ])
    ok_row, failed_row, sub_row, envelope = log.rows()
    assert ok_row.username == "alice" and ok_row.ok
    assert json.loads(ok_row.params) == ["***", "***", "***", "***", "hi"]
    assert failed_row.username is None and failed_row.fault_code == 406
    assert json.loads(failed_row.params) == ["***", "***", "***", "***", "hi"]
    assert sub_row.multicall_index == 0 and sub_row.username == "alice"
    assert json.loads(sub_row.params) == ["***", "***", "***", "***", "m"]
    everything = " ".join(f"{r.params} {r.result}" for r in log.rows())
    for secret in (good[3], forged[3], api_key):
        assert secret not in everything
    assert json.loads(envelope.params) == [{"methods": ["auth_echo"]}]


def test_durations_are_measured(db_url: str, make_log_app: MakeLogApp) -> None:
    """A 50 ms call is logged as taking about that long (not 0.0, not seconds)."""

    def setup(app: Flask, rpc: RPCEnable) -> None:
        @rpc.register
        def nap() -> bool:
            time.sleep(0.05)
            return True

    log = make_log_app(db_url, setup=setup)
    assert log.call("nap") is True
    (row,) = log.rows()
    assert 45.0 <= row.duration_ms < 5_000.0
