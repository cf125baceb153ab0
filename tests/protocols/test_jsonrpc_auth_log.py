"""JSON-RPC shares authentication (v1 by position and by name, v2), the call
log (protocol "jsonrpc", batch members numbered under their envelope), the
signals and the admin's protocol filter with XML-RPC."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auth_helpers import make_env, v1
from jsonrpc_helpers import call, post
from live import basic_auth

from flask_rpcenable import signals
from flask_rpcenable.auth.signing import sign_request_v2
from flask_rpcenable.params import V1_AUTH_PARAMS

ADMIN = {"RPCENABLE_ADMIN_USERNAME": "admin", "RPCENABLE_ADMIN_PASSWORD": "correct horse"}


def request(method: str, params: Any, id: Any = 1) -> dict[str, Any]:  # noqa: A002
    return {"jsonrpc": "2.0", "method": method, "params": params, "id": id}


def rows(env: Any) -> list[Any]:
    model = env.rpc.state(env.app).models.IncomingCall
    with env.app.app_context():
        found = env.db.session.query(model).order_by(model.id).all()
        env.db.session.expunge_all()
        return found


def test_auth_v1_by_position_and_by_name(tmp_path: Path, serve: Callable[..., Any]) -> None:
    env = make_env(tmp_path, serve=serve, RPCENABLE_LOG_INCOMING=True)
    key = env.add_user("alice")
    url = env.url + "/rpc/"
    answer = call(url, request("auth_echo", [*v1("alice", key), "hi"]))
    assert answer["result"] == "User alice says: hi"
    named = dict(zip(V1_AUTH_PARAMS, v1("alice", key), strict=True))
    answer = call(url, request("auth_echo", {**named, "var": "by name"}))
    assert answer["result"] == "User alice says: by name"
    # A replayed nonce, a bad signature, no credentials: the XML-RPC codes and messages.
    assert call(url, request("auth_echo", {**named, "var": "again"}))["error"]["code"] == 402
    bad = v1("alice", key, signature="0" * 64)
    error = call(url, request("auth_echo", [*bad, "x"]))["error"]
    assert error == {"code": 406, "message": "Authentication failed"}
    assert call(url, request("auth_echo", ["x"]))["error"]["code"] == 401
    assert call(url, request("auth_echo", [*v1("alice", key, timestamp=1), "x"]))[
        "error"]["code"] == 403
    logged = [r for r in rows(env) if r.method == "auth_echo"]
    assert {r.protocol for r in logged} == {"jsonrpc"}
    assert [r.username for r in logged[:2]] == ["alice", "alice"]
    text = " ".join(r.params or "" for r in logged)
    assert key not in text and named["signature"] not in text and named["nonce"] not in text
    assert "by name" in text


def test_auth_v2(tmp_path: Path, serve: Callable[..., Any]) -> None:
    env = make_env(tmp_path, serve=serve, RPCENABLE_LOG_INCOMING=True)
    key = env.add_user("bob")
    body = json.dumps(request("whoami", [])).encode()
    header = sign_request_v2("bob", key, "POST", "/rpc/v2/", body)
    status, _, data = post(env.url + "/rpc/v2/", body, headers={"Authorization": header})
    assert status == 200 and json.loads(data)["result"] == "bob"
    # The same header again: the nonce is used.
    status, _, data = post(env.url + "/rpc/v2/", body, headers={"Authorization": header})
    assert json.loads(data)["error"]["code"] == 402
    wrong = sign_request_v2("bob", key, "POST", "/rpc/v2/", b"other body")
    _, _, data = post(env.url + "/rpc/v2/", body, headers={"Authorization": wrong})
    refused = {"code": 406, "message": "Authentication failed"}
    assert json.loads(data) == {"jsonrpc": "2.0", "id": 1, "error": refused}
    # A batch: each member with an id gets the refusal under its id; a notification, none.
    batch = [request("whoami", [], id="a"), {"jsonrpc": "2.0", "method": "whoami"},
             request("whoami", [], id=7)]
    body = json.dumps(batch).encode()
    wrong = sign_request_v2("bob", key, "POST", "/rpc/v2/", b"other body")
    _, _, data = post(env.url + "/rpc/v2/", body, headers={"Authorization": wrong})
    assert json.loads(data) == [{"jsonrpc": "2.0", "id": "a", "error": refused},
                                {"jsonrpc": "2.0", "id": 7, "error": refused}]
    # A notification alone gets no reply; a body whose id cannot be read, id null.
    for sent, expected in [({"jsonrpc": "2.0", "method": "whoami"}, (204, None)),
                           ([1, 2], (200, {"jsonrpc": "2.0", "id": None, "error": refused}))]:
        body = json.dumps(sent).encode()
        wrong = sign_request_v2("bob", key, "POST", "/rpc/v2/", b"other body")
        status, _, data = post(env.url + "/rpc/v2/", body, headers={"Authorization": wrong})
        assert (status, json.loads(data) if data else None) == expected, sent
    # Each refusal is one row, under the method (or batch) the body calls.
    refused_rows = [(r.method, r.fault_code) for r in rows(env) if not r.ok]
    assert refused_rows == [("whoami", 402), ("whoami", 406), ("rpc.batch", 406),
                            ("whoami", 406), ("rpc.batch", 406)]


def test_batch_rows_and_signals(tmp_path: Path, serve: Callable[..., Any]) -> None:
    env = make_env(tmp_path, serve=serve, RPCENABLE_LOG_INCOMING=True)
    key = env.add_user("carol")
    seen: list[str] = []

    def receiver(sender: Any, **extra: Any) -> None:
        seen.append(extra["method"])

    batch = [
        request("echo", ["one"], id="a"),
        request("auth_echo", [*v1("carol", key), "two"], id="b"),
        {"jsonrpc": "2.0", "method": "echo", "params": ["note"]},
        {"not": "a request"},
        request("missing", [], id="c"),
    ]
    with signals.call_finished.connected_to(receiver), \
            signals.call_failed.connected_to(receiver):
        answer = call(env.url + "/rpc/", batch)
    assert [a["id"] for a in answer] == ["a", "b", None, "c"]
    assert seen.count("echo") == 2 and "auth_echo" in seen and "rpc.batch" in seen
    logged = rows(env)
    envelope = [r for r in logged if r.method == "rpc.batch"]
    assert len(envelope) == 1 and envelope[0].multicall_index is None
    assert json.loads(envelope[0].params) == [{"methods": ["echo", "auth_echo", "echo", "?",
                                                           "missing"]}]
    assert json.loads(envelope[0].result) == {"results": 2, "faults": 2}
    members = sorted((r for r in logged if r.multicall_index is not None),
                     key=lambda r: r.multicall_index)
    assert [(r.multicall_index, r.method, r.ok) for r in members] == [
        (0, "echo", True), (1, "auth_echo", True), (2, "echo", True), (3, "-", False),
        (4, "missing", False)]
    assert {r.protocol for r in logged} == {"jsonrpc"}
    assert len({r.request_id for r in logged}) == 1
    assert key not in " ".join(r.params or "" for r in logged)


def test_a_logged_exception_has_the_code_the_client_got(
    tmp_path: Path, serve: Callable[..., Any]
) -> None:
    env = make_env(tmp_path, serve=serve, RPCENABLE_LOG_INCOMING=True)

    @env.rpc.register
    def broken() -> str:
        raise ValueError("a detail for the server log only")

    url = env.url + "/rpc/"
    assert call(url, request("broken", []))["error"] == {"code": -32000, "message": "Server error"}
    (member,) = call(url, [request("broken", [], id="m")])
    assert member["error"]["code"] == -32000
    logged = [r for r in rows(env) if r.method == "broken"]
    assert [(r.fault_code, r.ok) for r in logged] == [(-32000, False), (-32000, False)]
    assert all("a detail for the server log only" in (r.traceback or "") for r in logged)
    assert all(r.fault_string.startswith("Application error") for r in logged)


def test_admin_filters_by_protocol(tmp_path: Path, serve: Callable[..., Any]) -> None:
    env = make_env(tmp_path, serve=serve, RPCENABLE_LOG_INCOMING=True,
                   RPCENABLE_ADMIN_ENABLED=True, **ADMIN)
    env.proxy().echo("by xml")
    call(env.url + "/rpc/", request("echo", ["by json"]))
    client = env.app.test_client()
    good = basic_auth("admin", "correct horse")
    base = "/admin/incoming-calls/"
    page = client.get(base, headers=good).get_data(as_text=True)
    assert "Protocol" in page and "jsonrpc" in page and "xmlrpc" in page
    match = re.search(r'<div id="filter-groups-data" class="d-none">(.*?)</div>', page, re.S)
    assert match
    groups = json.loads(html.unescape(match.group(1)))
    entry = next(e for e in groups["Protocol"] if e["operation"] == "equals")
    for protocol, shown, hidden in [("jsonrpc", "by json", "by xml"),
                                    ("xmlrpc", "by xml", "by json")]:
        listed = client.get(f"{base}?flt0_{entry['index']}={protocol}", headers=good)
        text = listed.get_data(as_text=True)
        assert shown in text and hidden not in text
