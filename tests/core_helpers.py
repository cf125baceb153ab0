"""Helpers shared by the core's wire tests (``test_core_*``).

Not a test module: it only talks HTTP. ``proxy()`` is Python's own XML-RPC
client; ``post()`` sends raw bytes, for bodies no well-behaved client would
send.
"""

from __future__ import annotations

import contextlib
import http.client
import xmlrpc.client
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import live
from flask import Flask
from live import build_app

new_app = build_app


@contextlib.contextmanager
def running(app: Flask) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a thread; yields the base URL."""
    with live.running(app) as server:
        yield server.url


def proxy(url: str, **options: Any) -> xmlrpc.client.ServerProxy:
    """A ServerProxy that reads and writes Python's builtin types and nil.

    Use it as a context manager so its connection is closed.
    """
    options.setdefault("allow_none", True)
    options.setdefault("use_builtin_types", True)
    return xmlrpc.client.ServerProxy(url, **options)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def loads(self) -> Any:
        """The XML-RPC response: the result, or raises the Fault."""
        assert self.status == 200, (self.status, self.body[:300])
        assert self.headers["Content-Type"].startswith("text/xml"), self.headers["Content-Type"]
        return xmlrpc.client.loads(self.body, use_builtin_types=True)[0][0]

    def fault(self) -> xmlrpc.client.Fault:
        """The fault in the response; fails if the call succeeded."""
        try:
            result = self.loads()
        except xmlrpc.client.Fault as fault:
            return fault
        raise AssertionError(f"expected a fault, got {result!r}")


def post(
    url: str,
    body: bytes | Iterable[bytes] | BinaryIO | None,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
) -> Reply:
    """Send one raw HTTP request and return the reply.

    An iterable body is sent with chunked transfer encoding; a file object
    as it is read (give its Content-Length in ``headers``).
    """
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        all_headers = {"Content-Type": "text/xml", "User-Agent": "raw-test-client/1.0"}
        all_headers.update(headers or {})
        chunked = body is not None and not isinstance(body, (bytes, bytearray)) and not hasattr(
            body, "read"
        )
        conn.request(
            method, parts.path or "/", body=body, headers=all_headers, encode_chunked=chunked
        )
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def call_body(method: str, *params: Any, allow_none: bool = True) -> bytes:
    """A methodCall as Python's client would send it."""
    return xmlrpc.client.dumps(params, method, allow_none=allow_none).encode("utf-8")


def raw_call(method: str, *values: str) -> bytes:
    """A methodCall whose ``<value>`` contents are given as raw XML."""
    params = "".join(f"<param><value>{v}</value></param>" for v in values)
    return (
        f"<?xml version='1.0'?><methodCall><methodName>{method}</methodName>"
        f"<params>{params}</params></methodCall>"
    ).encode()
