"""Resource bounds and bad input on the endpoint, and a logged client facing hostile servers."""

from __future__ import annotations

import gzip
import http.server
import threading
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from security_helpers import SecApp, make_sec_app, row_text

from flask_rpcenable import XMLRPCPoint
from flask_rpcenable.client.errors import BadResponse, ResponseTooLarge


@pytest.fixture
def sec(tmp_path: Path) -> SecApp:
    app = make_sec_app(tmp_path)
    app.app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
    return app


def _fault(response: Any) -> xmlrpc.client.Fault:
    assert response.status_code == 200
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.loads(response.data)
    return info.value


def _call(method: str, inner: str) -> bytes:
    return f"<methodCall><methodName>{method}</methodName>{inner}</methodCall>".encode()


def test_hundreds_of_thousands_of_params_are_refused_and_the_row_is_capped(sec: SecApp) -> None:
    param = "<param><value/></param>"
    count = (10 * 1024 * 1024 - 200) // len(param)
    fault = _fault(sec.post(_call("take", "<params>" + param * count + "</params>")))
    assert fault.faultCode == -32602
    row = sec.rows()[-1]
    assert row.method == "take"
    assert len(row.params) <= 10_100  # RPCENABLE_LOG_MAX_CHARS and a little
    assert len(fault.faultString) < 200


def test_a_struct_with_a_huge_number_of_members_is_bounded(sec: SecApp) -> None:
    member = "<member><name>k</name><value/></member>"
    count = (10 * 1024 * 1024 - 300) // len(member)
    body = _call("take", "<params><param><value><struct>" + member * count
                 + "</struct></value></param></params>")
    response = sec.post(body)
    assert xmlrpc.client.loads(response.data)[0] == (True,)
    members = "".join(f"<member><name>{i}</name><value/></member>" for i in range(300_000))
    body = _call("take", f"<params><param><value><struct>{members}</struct></value></param>"
                 "</params>")
    assert len(body) > 10 * 1024 * 1024
    assert sec.post(body).status_code == 413
    assert all(len(row.params or "") <= 10_100 for row in sec.rows())


def test_multicall_with_many_heavy_sub_calls(sec: SecApp) -> None:
    calls = [{"methodName": "echo", "params": ["z" * 9000]} for _ in range(1000)]
    response = sec.post(xmlrpc.client.dumps((calls,), "system.multicall"))
    results = xmlrpc.client.loads(response.data)[0][0]
    assert len(results) == 1000
    rows = sec.rows()
    assert len(rows) == 1001
    assert max(len(row.params or "") for row in rows) <= 10_100
    assert max(len(row.result or "") for row in rows) <= 10_100
    too_many = [{"methodName": "echo", "params": []}] * 1001
    fault = _fault(sec.post(xmlrpc.client.dumps((too_many,), "system.multicall")))
    assert fault.faultCode == -32602


def test_huge_strings_faults_and_tracebacks_are_cut_in_the_log(sec: SecApp) -> None:
    big = "x" * 9_000_000
    sec.post(xmlrpc.client.dumps((big,), "echo"))
    sec.post(xmlrpc.client.dumps((big,), "fail"))
    sec.post(xmlrpc.client.dumps(("y" * 3_000_000,), "boom"))
    rows = sec.rows()
    assert [row.method for row in rows] == ["echo", "fail", "boom"]
    for row in rows:
        assert len(row_text(row)) < 50_000


@pytest.mark.parametrize(
    "inner",
    [
        "<params><param><value>" + "<a>" * 200_000 + "</a>" * 200_000 + "</value></param></params>",
        "<params><param><value>" + "<array><data><value>" * 2000
        + "</value></data></array>" * 2000 + "</value></param></params>",
        "<params><param><value>" + "<struct><member><name>a</name><value>" * 2000
        + "</value></member></struct>" * 2000 + "</value></param></params>",
        "<params>" + "<x>" * 100_000 + "</x>" * 100_000 + "</params>",
    ],
    ids=["deep-unknown", "deep-array", "deep-struct", "deep-params"],
)
def test_deep_documents_are_a_fault(sec: SecApp, inner: str) -> None:
    assert _fault(sec.post(_call("take", inner))).faultCode == -32600


@pytest.mark.parametrize(
    ("method", "content_type", "headers", "status"),
    [
        # XML types are XML-RPC and JSON is JSON-RPC (here a parse error,
        # answered with 200 as JSON-RPC requires); anything else (what a
        # blind cross-site form post sends, too) is 415, before any method runs.
        ("POST", "application/json", {}, 200),
        ("POST", "multipart/form-data; boundary=x", {}, 415),
        ("POST", "application/x-www-form-urlencoded", {}, 415),
        ("POST", "text/plain", {}, 415),
        ("POST", "text/xml", {"Content-Encoding": "br"}, 415),
        ("POST", "text/xml", {"Content-Encoding": "gzip"}, 400),
        ("POST", "text/xml", {"Content-Length": "abc"}, 200),
        ("POST", "text/xml", {"Authorization": "Basic %%%"}, 200),
        ("POST", "text/xml", {"Authorization": "\u00ff" * 50}, 200),
        ("PUT", "text/xml", {}, 405),
        ("DELETE", "text/xml", {}, 405),
        ("HEAD", "text/xml", {}, 200),
        ("OPTIONS", "text/xml", {}, 200),
    ],
)
def test_odd_requests_never_500(
    sec: SecApp, method: str, content_type: str, headers: dict[str, str], status: int
) -> None:
    response = sec.client.open("/rpc/", method=method, content_type=content_type,
                               headers=headers, data=b"a=b")
    assert response.status_code == status
    assert b"Traceback" not in response.data


def test_gzip_bomb_is_refused(sec: SecApp) -> None:
    bomb = gzip.compress(b"<methodCall>" + b" " * 50_000_000 + b"</methodCall>")
    response = sec.post(bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_dashboard_over_many_rows(sec: SecApp) -> None:
    calls = [{"methodName": "fail", "params": ["e"]} for _ in range(1000)]
    for _ in range(3):
        sec.post(xmlrpc.client.dumps((calls,), "system.multicall"))
    from security_helpers import basic

    response = sec.client.get("/admin/", headers=basic())
    assert response.status_code == 200
    # each entry counts; a successful envelope does not (its entries are its calls)
    assert 'data-total="3000"' in response.get_data(as_text=True)


# -- the client against hostile servers ------------------------------------------


class _Hostile(http.server.BaseHTTPRequestHandler):
    reply: tuple[bytes, dict[str, str]] = (b"", {})

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        body, headers = self.server.reply  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hostile() -> Iterator[Any]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


_LOL = (
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><methodResponse><params><param>'
    b"<value><string>&b;</string></value></param></params></methodResponse>"
)
HOSTILE_RESPONSES = {
    "entities": (_LOL, {}),
    "entities-utf16": (
        _LOL.replace(b'"1.0"?>', b'"1.0" encoding="utf-16"?>').decode().encode("utf-16"), {}
    ),
    "external-dtd": (
        b'<?xml version="1.0"?><!DOCTYPE l SYSTEM "file:///etc/passwd"><methodResponse/>', {}
    ),
    "deep": (
        b"<methodResponse><params><param><value>" + b"<array><data><value>" * 3000
        + b"</value></data></array>" * 3000 + b"</value></param></params></methodResponse>",
        {},
    ),
    "gzip-bomb": (
        gzip.compress(b"<methodResponse><params><param><value><string>" + b"a" * 60_000_000
                      + b"</string></value></param></params></methodResponse>"),
        {"Content-Encoding": "gzip"},
    ),
    "garbage": (b"\x00\xff" * 10, {}),
    "wrong-root": (b"<html><body>hi</body></html>", {}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_RESPONSES))
def test_client_refuses_hostile_responses(sec: SecApp, hostile: Any, case: str) -> None:
    hostile.reply = HOSTILE_RESPONSES[case]
    port = hostile.server_address[1]
    with sec.app.app_context():
        point = XMLRPCPoint(f"http://alice:S3cretPW@127.0.0.1:{port}/rpc/")
        with pytest.raises(BadResponse) as info:
            point.echo("x")
    assert not isinstance(info.value, xmlrpc.client.Fault)
    assert "S3cretPW" not in str(info.value)
    (row,) = sec.rows("OutgoingCall")
    assert row.ok is False
    assert "S3cretPW" not in row_text(row)
    assert "aaaaaaaaaaaaaaaaaaaa" not in row_text(row)


def test_client_never_logs_url_credentials(
    sec: SecApp, hostile: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hostile.reply = (xmlrpc.client.dumps(("hi",), methodresponse=True).encode(), {})
    port = hostile.server_address[1]
    with sec.app.app_context():
        point = XMLRPCPoint(f"http://alice:S3cretPW@127.0.0.1:{port}/rpc/?api_key=K3YVALUE&x=1")
        assert point.echo("x") == "hi"
    (row,) = sec.rows("OutgoingCall")
    assert "S3cretPW" not in row_text(row) and "K3YVALUE" not in row_text(row)
    assert "S3cretPW" not in caplog.text and "K3YVALUE" not in caplog.text


def test_client_errors_do_not_carry_secret_query_values(sec: SecApp, hostile: Any) -> None:
    hostile.reply = HOSTILE_RESPONSES["gzip-bomb"]
    port = hostile.server_address[1]
    with sec.app.app_context():
        point = XMLRPCPoint(f"http://127.0.0.1:{port}/rpc/?api_key=K3YVALUE")
        with pytest.raises(ResponseTooLarge) as info:
            point.echo("x")
    (row,) = sec.rows("OutgoingCall")
    assert "K3YVALUE" not in row_text(row)
    assert "K3YVALUE" not in str(info.value)
