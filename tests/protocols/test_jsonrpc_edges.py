"""JSON-RPC beyond the specification's examples: batch edge cases, the
parsing guards, error mapping, value types, content types and namespaces."""

from __future__ import annotations

import base64
import datetime
import json
import xmlrpc.client
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from jsonrpc_helpers import spec_app

from flask_rpcenable.protocols.jsonrpc_codec import (
    MAX_NUMBER_CHARS,
    JSONRefused,
    loads_bounded,
    nesting_depth,
)


@pytest.fixture
def japp(make_app: Callable[..., Flask]) -> Flask:
    app, _ = spec_app(make_app, RPCENABLE_MAX_MULTICALL=3, RPCENABLE_MAX_DEPTH=8)
    return app


def rpc_post(app: Flask, body: Any, *, content_type: str | None = "application/json",
             path: str = "/rpc/") -> Any:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"Content-Type": content_type} if content_type else {}
    response = app.test_client().post(path, data=data, headers=headers)
    if response.status_code == 204:
        assert response.data == b""
        return None
    assert response.status_code == 200, response.data
    assert response.content_type == "application/json"
    return json.loads(response.data)


def req(method: str, params: Any = None, id: Any = 1) -> dict[str, Any]:  # noqa: A002
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        request["params"] = params
    if id is not ...:
        request["id"] = id
    return request


def error_of(answer: Any) -> tuple[int, str, Any]:
    error = answer["error"]
    return error["code"], error["message"], error.get("data")


# -- batches ------------------------------------------------------------------------


def test_batch_over_the_cap_is_one_invalid_request(japp: Flask) -> None:
    answer = rpc_post(japp, [req("get_data", id=n) for n in range(4)])
    assert isinstance(answer, dict), "a batch over the cap is refused whole"
    assert answer["id"] is None
    assert error_of(answer) == (-32600, "Invalid Request", "at most 3 calls per batch")
    assert len(rpc_post(japp, [req("get_data", id=n) for n in range(3)])) == 3


def test_a_batch_inside_a_batch_is_an_invalid_member(japp: Flask) -> None:
    answer = rpc_post(japp, [[req("get_data")], req("get_data", id=2)])
    assert answer[0] == {"jsonrpc": "2.0", "id": None,
                         "error": {"code": -32600, "message": "Invalid Request"}}
    assert answer[1]["result"] == ["hello", 5]


def test_mixed_batch_keeps_order_and_drops_notifications(japp: Flask) -> None:
    answer = rpc_post(japp, [req("subtract", [5, 1], id="a"), req("update", [1], id=...),
                             req("nope", id="b")])
    assert [a["id"] for a in answer] == ["a", "b"]
    assert answer[0]["result"] == 4
    assert error_of(answer[1])[0] == -32601


def test_invalid_members(japp: Flask) -> None:
    members = [
        {"jsonrpc": "1.0", "method": "get_data", "id": 1},
        {"jsonrpc": "2.0", "method": "get_data", "params": "x", "id": 2},
        {"jsonrpc": "2.0", "method": "get_data", "id": {"an": "object"}},
        {"jsonrpc": "2.0", "method": "get_data", "id": True},
        {"jsonrpc": "2.0", "id": 5},
    ]
    answer = rpc_post(japp, members[:3]) + rpc_post(japp, members[3:])
    assert [error_of(a)[:2] for a in answer] == [(-32600, "Invalid Request")] * 5
    assert [rpc_post(japp, m) for m in members] == answer
    # A valid id is echoed; an invalid one is null.
    assert [a["id"] for a in answer] == [1, 2, None, None, 5]


def test_a_notification_that_fails_answers_nothing(japp: Flask) -> None:
    assert rpc_post(japp, req("broken", id=...)) is None
    assert rpc_post(japp, [req("nope", id=...), req("subtract", ["x", 1], id=...)]) is None


# -- the guards ---------------------------------------------------------------------


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_deeper_than_the_cap_is_refused(japp: Flask) -> None:
    assert rpc_post(japp, req("echo", [nested(8)]))["result"] == nested(8)
    code, message, data = error_of(rpc_post(japp, req("echo", [nested(9)])))
    assert (code, message) == (-32700, "Parse error") and "deeper" in data
    # In a batch, one level more is the batch's own.
    assert rpc_post(japp, [req("echo", [nested(8)])])[0]["result"] == nested(8)
    assert error_of(rpc_post(japp, [req("echo", [nested(9)])]))[0] == -32700
    # Brackets inside strings do not count.
    brackets = "[[[[[[[[[[[[{{{{{{{{{{"
    assert rpc_post(japp, req("echo", [brackets]))["result"] == brackets


def test_nesting_depth_is_counted_outside_strings() -> None:
    assert nesting_depth(b'[{"a": "]]]]"}, [[]]]') == 3
    assert nesting_depth(b'"\\"[["') == 0
    with pytest.raises(JSONRefused):
        loads_bounded(b"[" * 50_000 + b"]" * 50_000, max_depth=100)


def test_numbers_of_hundreds_of_digits_are_refused(japp: Flask) -> None:
    ok = "9" * MAX_NUMBER_CHARS
    assert rpc_post(japp, f'{{"jsonrpc":"2.0","method":"echo","params":[{ok}],"id":1}}')[
        "result"] == int(ok)
    for number in ["9" * (MAX_NUMBER_CHARS + 1), "1." + "1" * MAX_NUMBER_CHARS, "1e999",
                   "-1e400"]:
        body = f'{{"jsonrpc":"2.0","method":"echo","params":[{number}],"id":1}}'
        code, message, data = error_of(rpc_post(japp, body))
        assert (code, message) == (-32700, "Parse error"), number
        assert data


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(japp: Flask, constant: str) -> None:
    body = f'{{"jsonrpc":"2.0","method":"echo","params":[{constant}],"id":1}}'
    code, message, data = error_of(rpc_post(japp, body))
    assert (code, message) == (-32700, "Parse error")
    assert constant.lstrip("-") in data


# -- errors and values ------------------------------------------------------------------


def test_an_exception_is_server_error_with_nothing_of_it(japp: Flask) -> None:
    answer = rpc_post(japp, req("broken"))
    assert answer["error"] == {"code": -32000, "message": "Server error"}
    assert "secret" not in json.dumps(answer)


def test_a_fault_keeps_its_code_and_string(japp: Flask) -> None:
    assert rpc_post(japp, req("refuse"))["error"] == {"code": 4711,
                                                       "message": "refused on purpose"}


def test_invalid_params_explain_in_data(japp: Flask) -> None:
    code, message, data = error_of(rpc_post(japp, req("subtract", {"minuend": 1})))
    assert (code, message) == (-32602, "Invalid params") and "'subtrahend' is missing" in data
    code, _, data = error_of(rpc_post(japp, req("subtract", ["one", 1])))
    assert code == -32602 and "expects int" in data


def test_datetime_and_bytes_results(japp: Flask) -> None:
    assert rpc_post(japp, req("when"))["result"] == "2024-05-06T07:08:09"
    assert base64.b64decode(rpc_post(japp, req("blob"))["result"]) == b"\x00\x01binary"
    code, message, data = error_of(rpc_post(japp, req("nan")))
    assert (code, message) == (-32603, "Internal error") and "JSON" in data


def test_datetime_date_and_bytes_params_come_as_text(make_app: Callable[..., Flask]) -> None:
    app, rpc = spec_app(make_app)

    @rpc.register
    def stamp(when: datetime.datetime, day: datetime.date, data: bytes) -> list[Any]:
        return [when.isoformat(), day.isoformat(), len(data), type(day).__name__]

    sent = ["2024-05-06T07:08:09+02:00", "2024-05-06", base64.b64encode(b"\x00" * 5).decode()]
    assert rpc_post(app, req("stamp", sent))["result"] == [
        "2024-05-06T07:08:09+02:00", "2024-05-06", 5, "date"]
    by_name = dict(zip(["when", "day", "data"], sent, strict=True))
    assert rpc_post(app, req("stamp", by_name))["result"][2] == 5
    for bad in (["noon", sent[1], sent[2]], [sent[0], sent[1], "%%%"]):
        code, _, data = error_of(rpc_post(app, req("stamp", bad)))
        assert code == -32602 and "stamp(" in data
    # XML-RPC has types of its own for these: a string stays a string there.
    body = xmlrpc.client.dumps(tuple(sent), "stamp").encode()
    answer = app.test_client().post("/rpc/", data=body, content_type="text/xml").data
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(answer)
    assert fault.value.faultCode == -32602


def test_introspection_and_no_multicall(japp: Flask) -> None:
    names = rpc_post(japp, req("system.listMethods"))["result"]
    assert "subtract" in names and "system.methodHelp" in names
    assert "system.multicall" not in names
    assert rpc_post(japp, req("system.methodHelp", ["subtract"]))["result"].startswith("Subtract")
    assert rpc_post(japp, req("system.methodSignature", ["subtract"]))["result"] == [
        ["int", "int", "int"]]
    for method in ["system.multicall", "rpc.batch"]:
        assert error_of(rpc_post(japp, req(method, [[]])))[0] == -32601


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json; charset=utf-8", None),
        (None, None),
        (None, " \n"),
    ],
)
def test_content_types(japp: Flask, content_type: str | None, body: str | None) -> None:
    text = (body or "") + json.dumps(req("get_data"))
    assert rpc_post(japp, text, content_type=content_type)["result"] == ["hello", 5]
    batch = json.dumps([req("get_data")])
    assert rpc_post(japp, batch, content_type=content_type)[0]["result"] == ["hello", 5]


def test_other_types_are_415(japp: Flask) -> None:
    client = japp.test_client()
    body = json.dumps(req("get_data"))
    assert client.post("/rpc/", data=body, content_type="text/plain").status_code == 415


def test_versions(japp: Flask) -> None:
    assert rpc_post(japp, req("math.add", [1, 2]), path="/rpc/v2/")["result"] == 3
    assert error_of(rpc_post(japp, req("math.add", [1, 2])))[0] == -32601
    response = japp.test_client().post("/rpc/v7/", json=req("math.add", [1, 2]))
    assert response.status_code == 404
