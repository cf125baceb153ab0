"""JSONRPCPoint and ``--json`` of the command-line call, against a real server."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from auth_helpers import make_env
from click.testing import CliRunner
from flask import Flask
from jsonrpc_helpers import spec_app

from flask_rpcenable.client import JSONRPCError, JSONRPCPoint
from flask_rpcenable.client.console import main
from flask_rpcenable.client.errors import ResponseTooLarge


@pytest.fixture
def spec_url(make_app: Callable[..., Flask], serve: Callable[..., Any]) -> tuple[Flask, str]:
    app, _ = spec_app(make_app)
    return app, serve(app).url + "/rpc/"


def test_calls_notifications_and_batches(spec_url: tuple[Flask, str]) -> None:
    app, url = spec_url
    with JSONRPCPoint(url) as remote:
        assert remote.subtract(42, 23) == 19
        assert remote.subtract(subtrahend=23, minuend=42) == 19
        assert remote.system.listMethods()[0] == "blob"
        assert remote.when() == "2024-05-06T07:08:09"
        with pytest.raises(JSONRPCError) as caught:
            remote.refuse()
        assert (caught.value.code, caught.value.message) == (4711, "refused on purpose")
        assert caught.value.faultCode == 4711
        with pytest.raises(JSONRPCError) as caught:
            remote.subtract(1)
        assert caught.value.code == -32602 and "expected 2" in caught.value.data
        with pytest.raises(TypeError):
            remote.subtract(1, subtrahend=2)
        assert remote.notify("update", 1, 2) is None
        with remote.batch() as batch:
            batch.subtract(5, 3)
            batch.notify("notify_hello", 9)
            batch.foobar()
            batch.call("get_data")
        assert batch.results[0] == 2 and batch.results[2] == ["hello", 5]
        assert isinstance(batch.results[1], JSONRPCError) and batch.results[1].code == -32601
        with remote.batch() as only_notes:
            only_notes.notify("notify_sum", 1)
        assert only_notes.results == []
    assert app.extensions["test_notes"] == [("update", (1, 2)), ("hello", (9,)), ("sum", (1,))]


def test_size_cap(spec_url: tuple[Flask, str]) -> None:
    _, url = spec_url
    with pytest.raises(ResponseTooLarge):
        JSONRPCPoint(url, max_response_size=50).echo("x" * 100)


def test_auth_and_the_outgoing_log(tmp_path: Path, serve: Callable[..., Any]) -> None:
    env = make_env(tmp_path, serve=serve, RPCENABLE_LOG_OUTGOING=True)
    key = env.add_user("dora")
    url = env.url + "/rpc/"
    assert JSONRPCPoint(url, auth=("dora", key)).auth_echo("v2") == "User dora says: v2"
    v1 = JSONRPCPoint(url, auth=("dora", key), auth_scheme="v1")
    assert v1.auth_echo("pos") == "User dora says: pos"
    assert v1.auth_echo(var="named") == "User dora says: named"
    assert JSONRPCPoint(env.url + "/rpc/v2/", auth=("dora", key)).whoami() == "dora"
    with pytest.raises(JSONRPCError) as caught:
        JSONRPCPoint(url, auth=("dora", "wrong-key")).auth_echo("x")
    assert caught.value.code == 406
    model = env.rpc.state(env.app).models.OutgoingCall
    with env.app.app_context():
        v1.auth_echo(var="logged")
        rows = env.db.session.query(model).all()
    assert len(rows) == 1 and rows[0].method == "auth_echo" and rows[0].ok
    assert key not in rows[0].params and '"var": "logged"' in rows[0].params
    assert '"nonce": "***"' in rows[0].params


def test_command_line_json(spec_url: tuple[Flask, str]) -> None:
    _, url = spec_url
    runner = CliRunner()
    done = runner.invoke(main, ["call", "--json", url, "subtract", "42", "23"])
    assert done.exit_code == 0, done.output
    assert done.output.strip() == "19"
    done = runner.invoke(main, ["call", "--json", url, "refuse"])
    assert done.exit_code == 1 and "4711" in done.output
    done = runner.invoke(main, ["call", "--json", url, "when"])
    assert datetime.datetime.fromisoformat(done.output.strip().strip('"')).year == 2024
