"""The protocol-neutral core: a handler of a made-up protocol, added in a few
lines, gets the registry, parameter checks by position and by name, auth,
the call log and the signals, with nothing of XML-RPC."""

from __future__ import annotations

import json
import xmlrpc.client
from typing import Any

import pytest
from flask import Flask, Response

import flask_rpcenable.protocols as protocols
from flask_rpcenable import RPCEnable, signals
from flask_rpcenable.calls import CallContext
from flask_rpcenable.errors import INVALID_PARAMS, METHOD_NOT_FOUND, RPCError
from flask_rpcenable.protocols.base import ProtocolHandler


class ToyHandler(ProtocolHandler):
    """``{"call": name, "with": [...] or {...}}`` in, ``{"ok": ...}``/``{"error": ...}`` out."""

    name = "toy"
    media_types = ("application/x-toy",)
    first_bytes = b"!"

    def respond(self, ctx: CallContext, body: bytes) -> Response:
        request = json.loads(body[1:])
        try:
            result = self.dispatcher.call(ctx, request["call"], request["with"])
        except RPCError as error:
            return self.error_response(error)
        return Response(json.dumps({"ok": result}), content_type="application/x-toy")

    def error_response(self, error: RPCError) -> Response:
        payload = {"error": [error.code, error.message]}
        return Response(json.dumps(payload), content_type="application/x-toy")

    def method_name(self, body: bytes) -> str:
        return str(json.loads(body[1:]).get("call", "-"))


@pytest.fixture
def toy_app(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setattr(protocols, "PROTOCOLS", (*protocols.PROTOCOLS, ToyHandler))
    import flask_rpcenable.views as views

    monkeypatch.setattr(views, "PROTOCOLS", protocols.PROTOCOLS)
    rpc = RPCEnable()

    @rpc.register(name="math.power")
    def power(base: int, exponent: int = 2) -> int:
        return int(base**exponent)

    app = make_app(RPCENABLE_LOG_INCOMING=True)
    rpc.init_app(app)
    app.extensions["test_rpc"] = rpc
    return app


def toy(app: Flask, method: str, params: Any, content_type: str | None = "application/x-toy"):
    body = b"!" + json.dumps({"call": method, "with": params}).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    response = app.test_client().post("/rpc/", data=body, headers=headers)
    assert response.status_code == 200, response.data
    return json.loads(response.data)


def test_a_new_protocol_runs_calls_by_position_and_by_name(toy_app: Flask) -> None:
    assert toy(toy_app, "math.power", [3]) == {"ok": 9}
    assert toy(toy_app, "math.power", {"base": 2, "exponent": 5}) == {"ok": 32}
    assert toy(toy_app, "math.power", {"exponent": 3, "base": 2}, content_type=None) == {"ok": 8}


def test_errors_come_back_in_the_protocol_s_own_form(toy_app: Flask) -> None:
    assert toy(toy_app, "nope", [])["error"][0] == METHOD_NOT_FOUND
    code, message = toy(toy_app, "math.power", {"base": 2, "power": 3})["error"]
    assert code == INVALID_PARAMS and "no parameter named 'power'" in message
    code, message = toy(toy_app, "math.power", {"exponent": 3})["error"]
    assert code == INVALID_PARAMS and "'base' is missing" in message
    code, message = toy(toy_app, "math.power", {"base": "two"})["error"]
    assert code == INVALID_PARAMS and "expects int" in message


def test_records_and_signals_name_the_protocol(toy_app: Flask) -> None:
    seen: list[str] = []

    def receiver(sender: Any, **extra: Any) -> None:
        seen.append(extra["method"])

    with signals.call_finished.connected_to(receiver):
        toy(toy_app, "math.power", [4])
    assert seen == ["math.power"]
    state = toy_app.extensions["test_rpc"].state(toy_app)
    with toy_app.app_context():
        rows = state.db.session.query(state.models.IncomingCall).all()
    assert [(row.method, row.protocol) for row in rows] == [("math.power", "toy")]


def test_xml_rpc_still_answers_beside_it(toy_app: Flask) -> None:
    body = xmlrpc.client.dumps((3, 3), "math.power")
    response = toy_app.test_client().post("/rpc/", data=body, content_type="text/xml")
    assert xmlrpc.client.loads(response.data)[0] == (27,)


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", b"<methodCall/>", 415),
        ("application/x-www-form-urlencoded", b"a=<x>", 415),
        ("multipart/form-data; boundary=x", b"--x--", 415),
        ("application/json-patch+json", b"{}", 415),
        (None, b"<?xml version='1.0'?><methodCall><methodName>system.listMethods"
               b"</methodName></methodCall>", 200),
        (None, b" \n<methodCall><methodName>system.listMethods</methodName></methodCall>", 200),
        (None, b"hello", 415),
        (None, b"", 415),
        ("text/xml; charset=utf-8", b"<methodCall><methodName>system.listMethods"
                                    b"</methodName></methodCall>", 200),
        ("application/xml", b"<methodCall><methodName>system.listMethods"
                            b"</methodName></methodCall>", 200),
    ],
)
def test_content_type_picks_the_protocol(
    app: Flask, content_type: str | None, body: bytes, status: int
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = app.test_client().post("/rpc/", data=body, headers=headers)
    assert response.status_code == status
    if status == 200:
        assert xmlrpc.client.loads(response.data)[0][0][0] == "system.listMethods"
