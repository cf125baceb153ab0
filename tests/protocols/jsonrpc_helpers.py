"""Helpers for the JSON-RPC tests (no tests here): the specification's example
methods on an app, and raw JSON-RPC over real HTTP."""

from __future__ import annotations

import datetime
import http.client
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from flask_rpcenable import Fault, RPCEnable


def spec_app(make_app: Callable[..., Flask], **config: Any) -> tuple[Flask, RPCEnable]:
    """An app with the methods of the specification's section 7, and a few more."""
    rpc = RPCEnable()
    notes: list[Any] = []

    @rpc.register
    def subtract(minuend: int, subtrahend: int) -> int:
        """Subtract the second number from the first."""
        return minuend - subtrahend

    @rpc.register
    def update(*values: int) -> None:
        notes.append(("update", values))

    @rpc.register(name="sum")
    def total(*values: int) -> int:
        return sum(values)

    @rpc.register
    def notify_hello(*values: int) -> None:
        notes.append(("hello", values))

    @rpc.register
    def notify_sum(*values: int) -> None:
        notes.append(("sum", values))

    @rpc.register
    def get_data() -> list[Any]:
        return ["hello", 5]

    @rpc.register
    def broken() -> int:
        raise KeyError("a secret detail")

    @rpc.register
    def refuse() -> int:
        raise Fault(4711, "refused on purpose")

    @rpc.register
    def when() -> datetime.datetime:
        return datetime.datetime(2024, 5, 6, 7, 8, 9)

    @rpc.register
    def blob() -> bytes:
        return b"\x00\x01binary"

    @rpc.register
    def nan() -> float:
        return float("nan")

    @rpc.register
    def echo(value: Any = None) -> Any:
        return value

    @rpc.register(name="math.add", version=2)
    def add(a: int, b: int) -> int:
        return a + b

    app = make_app(**config)
    rpc.init_app(app)
    app.extensions["test_notes"] = notes
    return app, rpc


def post(
    url: str, body: bytes | str | Any, content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, str | None, bytes]:
    """POST ``body`` (bytes as they are, anything else as JSON) to ``url``:
    ``(status, content type, body)``."""
    if isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, bytes):
        body = json.dumps(body).encode()
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    all_headers = {"Content-Type": content_type} if content_type else {}
    all_headers.update(headers or {})
    try:
        connection.request("POST", parts.path or "/", body, all_headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def call(url: str, body: Any, **kwargs: Any) -> Any:
    """POST ``body``; the parsed JSON answer (``None`` for HTTP 204)."""
    status, content_type, data = post(url, body, **kwargs)
    if status == 204:
        assert data == b""
        return None
    assert status == 200, (status, data)
    assert content_type == "application/json"
    return json.loads(data)
