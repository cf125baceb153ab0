"""``flask rpc call``: output, exit codes, auth from the environment, logging."""

from __future__ import annotations

import json
from typing import Any

import pytest
from client_helpers import free_port

from flask_rpcenable.client.cli import parse_argument, to_json


def invoke(remote: Any, *args: str, env: dict[str, str] | None = None) -> Any:
    runner = remote.app.test_cli_runner()
    return runner.invoke(args=["rpc", "call", *args], env=env or {"RPCENABLE_CALL_API_KEY": ""})


def test_call_prints_json(remote: Any) -> None:
    result = invoke(remote, remote.url, "math.add", "2", "40")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == 42
    result = invoke(remote, remote.url, "echo", "plain words")  # not JSON: a string
    assert json.loads(result.stdout) == "Server says: plain words"
    result = invoke(remote, remote.url, "echo", '"42"')
    assert json.loads(result.stdout) == "Server says: 42"
    result = invoke(remote, remote.url, "--strings", "echo", "42")
    assert json.loads(result.stdout) == "Server says: 42"
    result = invoke(remote, remote.url, "system.listMethods")
    assert "math.add" in json.loads(result.stdout)


def test_binary_and_dates_as_json(remote: Any) -> None:
    result = invoke(remote, remote.url, "types")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"when": "2024-01-02T03:04:05", "data": "AP8="}


def test_fault_exit_1_on_stderr(remote: Any) -> None:
    result = invoke(remote, remote.url, "no.such.method")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Fault -32601: ")
    result = invoke(remote, remote.url, "math.add", "1")
    assert result.exit_code == 1 and "Fault -32602" in result.stderr


def test_transport_error_exit_3(remote: Any) -> None:
    result = invoke(remote, f"http://127.0.0.1:{free_port()}/rpc/", "echo", "--timeout", "5")
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: ConnectError: ")
    assert "could not connect" in result.stderr


def test_usage_errors_exit_2(remote: Any) -> None:
    result = invoke(remote, remote.url, "auth_echo", "--user", "alice")
    assert result.exit_code == 2
    assert "RPCENABLE_CALL_API_KEY" in result.stderr
    result = invoke(remote, "ftp://127.0.0.1/", "echo")
    assert result.exit_code == 2 and "scheme" in result.stderr
    result = invoke(remote, remote.url, "bad<name")
    assert result.exit_code == 2 and "invalid XML-RPC method name" in result.stderr
    result = invoke(remote, remote.url, "echo", "--scheme", "v9")
    assert result.exit_code == 2


@pytest.mark.parametrize("scheme", ["v1", "v2"])
def test_authenticated_call(remote: Any, scheme: str) -> None:
    result = invoke(
        remote, remote.url, "auth_echo", "hi", "--user", "alice", "--scheme", scheme,
        env={"RPCENABLE_CALL_API_KEY": remote.key},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == "User alice says: hi"
    assert remote.key not in result.output


def test_key_from_another_variable(remote: Any) -> None:
    result = invoke(
        remote, remote.url, "auth_echo", "x", "--user", "alice", "--key-env", "MY_KEY",
        env={"MY_KEY": remote.key},
    )
    assert json.loads(result.stdout) == "User alice says: x"
    result = invoke(
        remote, remote.url, "auth_echo", "x", "--user", "alice",
        env={"RPCENABLE_CALL_API_KEY": "wrong"},
    )
    assert result.exit_code == 1 and "Fault 406" in result.stderr


def test_cli_calls_are_logged(remote: Any) -> None:
    invoke(remote, remote.url, "math.add", "1", "2")
    state = remote.rpc.state(remote.app)
    with remote.app.app_context():
        rows = state.db.session.query(state.models.OutgoingCall).all()
        assert [(r.method, r.params, r.response) for r in rows] == [("math.add", "[1, 2]", "3")]


def test_negative_numbers_after_double_dash(remote: Any) -> None:
    result = invoke(remote, remote.url, "math.add", "--", "-1", "-2")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == -3


def test_parse_argument_and_to_json() -> None:
    assert parse_argument("[1, 2]") == [1, 2]
    assert parse_argument('{"a": null}') == {"a": None}
    assert parse_argument("true") is True
    assert parse_argument("hello") == "hello"
    assert parse_argument("1", as_string=True) == "1"
    assert json.loads(to_json({"b": b"\x01", "n": None})) == {"b": "AQ==", "n": None}
