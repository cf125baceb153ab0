"""Issue 14, item 1: no replayable v1 credentials in the call log, whatever the method.

A call to a method that does not exist, or to a guarded method under the
wrong ``/rpc/vN/``, used to be logged with its parameters in clear; its
nonce was never used, so the row could be replayed on a guarded method.
"""

from __future__ import annotations

import json
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from security_helpers import APP_SECRET, SecApp

from flask_rpcenable import RPCEnable, signals


def make_app(tmp_path: Path) -> SecApp:
    """Call logging and auth, a guarded method in the default namespace and in v2."""
    app = Flask("logsecrets", instance_path=str(tmp_path / "instance"))
    app.config.update(
        TESTING=True,
        SECRET_KEY=APP_SECRET,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'log.sqlite'}",
        RPCENABLE_LOG_INCOMING=True,
        RPCENABLE_ADMIN_ENABLED=False,
    )
    db = SQLAlchemy()
    db.init_app(app)
    rpc = RPCEnable()

    @rpc.register
    @rpc.auth
    def auth_echo(user: Any, var: str = "") -> str:
        return f"User {user.username} says: {var}"

    @rpc.register(name="v2only", version=2)
    @rpc.auth
    def v2only(user: Any) -> str:
        return "v2"

    rpc.init_app(app, db=db)
    with app.app_context():
        db.create_all()
    sec = SecApp(app=app, db=db, rpc=rpc, job=None)
    sec.add_user("alice")
    return sec


@pytest.fixture
def sec(tmp_path: Path) -> SecApp:
    return make_app(tmp_path)


def _post(sec: SecApp, method: str, params: tuple[Any, ...], path: str = "/rpc/") -> Any:
    body = xmlrpc.client.dumps(params, method, allow_none=True)
    response = sec.client.post(path, data=body, content_type="text/xml")
    assert response.status_code == 200
    try:
        return xmlrpc.client.loads(response.data)[0][0]
    except xmlrpc.client.Fault as fault:
        return fault


def _replay(sec: SecApp, row: Any) -> Any:
    """What an attacker who reads ``row`` gets by replaying its first four params."""
    stored = json.loads(row.params)
    return _post(sec, "auth_echo", (*stored[:4], "replayed"))


def _assert_redacted(sec: SecApp, row: Any, args: list[Any]) -> None:
    assert json.loads(row.params)[:4] == ["***"] * 4
    assert args[0] not in row.params and args[3] not in row.params
    result = _replay(sec, row)
    assert isinstance(result, xmlrpc.client.Fault), result


def test_mistyped_method_is_logged_without_credentials(sec: SecApp) -> None:
    args = sec.v1_args("alice")
    fault = _post(sec, "auth_ehco", (*args, "typo"))
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == -32601
    (row,) = sec.rows()
    assert row.method == "auth_ehco"
    _assert_redacted(sec, row, args)
    assert json.loads(row.params)[4] == "typo"


def test_guarded_method_in_the_wrong_namespace(sec: SecApp) -> None:
    args = sec.v1_args("alice")
    fault = _post(sec, "auth_echo", (*args, "x"), path="/rpc/v2/")
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == -32601
    (row,) = sec.rows()
    _assert_redacted(sec, row, args)


def test_multicall_entry_of_a_missing_method(sec: SecApp) -> None:
    args = sec.v1_args("alice")
    calls = [{"methodName": "nope", "params": [*args, "x"]}]
    result = _post(sec, "system.multicall", (calls,))
    assert result[0]["faultCode"] == -32601
    entry, envelope = sec.rows()
    assert entry.method == "nope" and entry.multicall_index == 0
    _assert_redacted(sec, entry, args)
    assert args[3] not in envelope.params


def test_named_v1_arguments_of_a_missing_method(sec: SecApp) -> None:
    """By name (JSON-RPC style), through the dispatcher itself."""
    from flask_rpcenable.calls import CallContext
    from flask_rpcenable.errors import RPCError

    args = sec.v1_args("alice")
    named = dict(zip(("nonce", "timestamp", "username", "signature"), args, strict=True))
    dispatcher = sec.rpc.state(sec.app).dispatcher
    with sec.app.test_request_context("/rpc/", method="POST"), pytest.raises(RPCError):
        dispatcher.call(CallContext(version=None), "nope", {**named, "var": "v"})
    (row,) = sec.rows()
    stored = json.loads(row.params)
    assert stored == {"nonce": "***", "timestamp": "***", "username": "***",
                      "signature": "***", "var": "v"}


def test_signals_get_redacted_params_too(sec: SecApp) -> None:
    seen: list[Any] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs["params"])

    args = sec.v1_args("alice")
    with signals.call_failed.connected_to(receiver):
        _post(sec, "auth_ehco", (*args, "typo"))
    assert seen == [["***", "***", "***", "***", "typo"]]


def test_the_attack_as_reported_now_fails(sec: SecApp) -> None:
    """The original demonstration: read a mistyped call's row, replay it."""
    args = sec.v1_args("alice")
    _post(sec, "auth_ehco", (*args, "hello"))
    (row,) = sec.rows()
    result = _replay(sec, row)
    assert isinstance(result, xmlrpc.client.Fault)
    assert result.faultCode in (401, 403, 406)
    # And the genuine arguments, never used, still work for their owner.
    assert _post(sec, "auth_echo", (*args, "hi")) == "User alice says: hi"


def test_ordinary_params_are_untouched(sec: SecApp) -> None:
    """Four strings that do not look like a nonce and a signature stay as they are."""
    _post(sec, "nope", ("a", "b", "c", "d"))
    (row,) = sec.rows()
    assert json.loads(row.params) == ["a", "b", "c", "d"]
