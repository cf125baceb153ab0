"""Payloads of the benchmark and calling a WSGI app directly, as a server would.

A call is an environ and a ``start_response``; the response iterable is read
and closed. No test client: it would add its own ~120 us to each call.
"""

from __future__ import annotations

import datetime
import io
import random
import sys
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# -- payloads --------------------------------------------------------------------


def struct_list(count: int = 2000) -> list[dict[str, Any]]:
    """``count`` small structs of the common XML-RPC types (1.2 MB as a request)."""
    return [
        {
            "id": i,
            "name": f"item {i}",
            "price": 1.5 * i,
            "active": i % 2 == 0,
            "tags": ["a", "b"],
            "created": datetime.datetime(2024, 5, 17, 12, 30, i % 60),
        }
        for i in range(count)
    ]


@dataclass
class Payload:
    key: str
    label: str
    method: str  # "echo", or "system.multicall"
    args: tuple[Any, ...]  # params of echo, or of each multicall entry
    entries: int = 0  # multicall entries (0: a plain call)

    def expected(self) -> Any:
        if self.entries:
            return [[self.args[0]] for _ in range(self.entries)]
        return self.args[0]


def payloads() -> list[Payload]:
    rng = random.Random(13)
    return [
        Payload("small", "small echo", "echo", ("Hello, world!",)),
        Payload("structs", "2,000-struct echo", "echo", (struct_list(),)),
        Payload("multicall", "100-entry multicall", "system.multicall", ("Hello, world!",), 100),
        Payload("base64", "5 MB base64 echo", "echo", (rng.randbytes(5 * 1024 * 1024),)),
    ]


def encode_call(payload: Payload, method: str, auth: Callable[[], tuple] | None) -> bytes:
    """The request body; ``auth`` prepends v1 arguments to each call."""
    prefix = auth if auth is not None else tuple
    if payload.entries:
        calls = [
            {"methodName": method, "params": [*prefix(), *payload.args]}
            for _ in range(payload.entries)
        ]
        return xmlrpc.client.dumps((calls,), "system.multicall", allow_none=True).encode()
    return xmlrpc.client.dumps((*prefix(), *payload.args), method, allow_none=True).encode()


# -- calling a WSGI app directly --------------------------------------------------

BASE_ENVIRON = {
    "REQUEST_METHOD": "POST",
    "SCRIPT_NAME": "",
    "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_HOST": "127.0.0.1:8000",
    "CONTENT_TYPE": "text/xml",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
}


def call_wsgi(app: Any, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """POST ``body`` to ``app`` as a WSGI server would; return the response body."""
    environ = dict(BASE_ENVIRON)
    environ["PATH_INFO"] = path
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input"] = io.BytesIO(body)
    if headers:
        environ.update(headers)
    status: list[str] = []

    def start_response(s: str, h: list, exc_info: Any = None) -> Callable[[bytes], None]:
        status.append(s)
        return lambda data: None

    result = app(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not status or not status[0].startswith("200"):
        raise RuntimeError(f"HTTP {status} from {path}: {data[:300]!r}")
    return data
