"""A call builds its CallRecord only when something records or listens (issue 13)."""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import pytest
from flask import Flask

import flask_rpcenable.dispatch as dispatch
from flask_rpcenable import RPCEnable, signals
from flask_rpcenable.redact import dump_json, sanitize


def _app(tmp_path: Any, **config: Any) -> Flask:
    app = Flask("records", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="records-secret-key-0123456789", **config)
    rpc = RPCEnable()

    @rpc.register
    def echo(value: Any = "") -> Any:
        return value

    @rpc.register
    def boom() -> None:
        raise ValueError("secret detail")

    rpc.init_app(app)
    return app


def _post(app: Flask, method: str, *params: Any) -> Any:
    body = xmlrpc.client.dumps(params, method, allow_none=True)
    response = app.test_client().post("/rpc/", data=body, content_type="text/xml")
    try:
        return xmlrpc.client.loads(response.data)[0][0]
    except xmlrpc.client.Fault as fault:
        return fault


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    real = dispatch.CallRecord

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs["method"])
        return real(*args, **kwargs)

    monkeypatch.setattr(dispatch, "CallRecord", counting)
    return made


def test_no_record_without_log_or_receivers(tmp_path: Any, built: list[str]) -> None:
    app = _app(tmp_path)
    assert _post(app, "echo", "hi") == "hi"
    calls = [{"methodName": "echo", "params": [i]} for i in range(3)]
    assert _post(app, "system.multicall", calls) == [[0], [1], [2]]
    assert built == []
    # An error still maps to the same fault, without a record kept.
    fault = _post(app, "boom")
    assert fault.faultCode == -32500 and "secret" not in fault.faultString


def test_no_record_for_receivers_of_another_app(tmp_path: Any, built: list[str]) -> None:
    app = _app(tmp_path / "one")
    other = _app(tmp_path / "other")
    heard: list[Any] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        heard.append(sender)

    signals.call_finished.connect(receiver, other)
    try:
        assert _post(app, "echo", "hi") == "hi"
        assert built == [] and heard == []
        assert _post(other, "echo", "there") == "there"
    finally:
        signals.call_finished.disconnect(receiver, other)
    assert built == ["echo"] and heard == [other]


def test_record_when_a_receiver_listens(tmp_path: Any, built: list[str]) -> None:
    app = _app(tmp_path)
    finished: list[Any] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        finished.append(kwargs["result"])

    signals.call_finished.connect(receiver, app)
    try:
        assert _post(app, "echo", "hi") == "hi"
    finally:
        signals.call_finished.disconnect(receiver, app)
    assert built == ["echo"] and finished == ["hi"]


def test_record_when_the_log_is_on(tmp_path: Any, built: list[str]) -> None:
    app = _app(tmp_path, RPCENABLE_LOG_INCOMING=True)
    assert _post(app, "echo", "hi") == "hi"
    assert built == ["echo"]


def test_dump_json_stops_walking_at_the_limit() -> None:
    walked = 0

    class Counted(dict):  # type: ignore[type-arg]
        def items(self) -> Any:
            nonlocal walked
            walked += 1
            return super().items()

    value = [Counted(id=i, name=f"item {i}") for i in range(10_000)]
    text = dump_json(value, 300, ())
    assert len(text) <= 300 and "[cut: over " in text
    assert walked < 50
    full = str(sanitize([dict(v) for v in value], 300, ()))  # the same members, in order
    assert text.startswith('[{"id": 0, "name": "item 0"}, {"id": 1') and full
    # A value that fits is written as before, whole.
    assert dump_json({"a": [1, 2]}, 300, ()) == '{"a": [1, 2]}'
