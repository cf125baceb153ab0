"""Issue 14, item 6: the cap on compressed bytes read is reached by a test.

A chunked body (no Content-Length) of 250 KB of empty deflate blocks
inflates to almost nothing: only the cap on the bytes *read* refuses it.
Without that cap the server reads any amount of compressed padding.
"""

from __future__ import annotations

import http.client
import xmlrpc.client
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from live import build_app

from flask_rpcenable import RPCEnable

LIMIT = 100_000
#: A non-final stored block of length 0, byte-aligned: inflates to nothing.
EMPTY_BLOCK = b"\x00\x00\x00\xff\xff"


def padded_deflate(payload: bytes, padding: int) -> bytes:
    """A zlib stream of ``payload`` after ``padding`` bytes of empty stored blocks."""
    compressor = zlib.compressobj()
    head = compressor.compress(b"")  # the two-byte zlib header
    blocks = EMPTY_BLOCK * (padding // len(EMPTY_BLOCK))
    stream = head + blocks + compressor.compress(payload) + compressor.flush()
    assert zlib.decompress(stream) == payload
    return stream


def post_chunked(url: str, data: bytes, encoding: str) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    try:
        connection.request(
            "POST", parts.path, body=chunks(), encode_chunked=True,
            headers={"Content-Type": "text/xml", "Content-Encoding": encoding},
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture
def url(tmp_path: Path, serve: Callable[[Flask], Any]) -> str:
    app = build_app(tmp_path, RPCENABLE_MAX_REQUEST_SIZE=LIMIT, RPCENABLE_ADMIN_ENABLED=False)
    rpc = RPCEnable()

    @rpc.register
    def echo(var: str = "") -> str:
        return f"Server says: {var}"

    rpc.init_app(app)
    return serve(app).url + "/rpc/"


CALL = xmlrpc.client.dumps(("hi",), "echo").encode()


def test_small_padded_body_is_served(url: str) -> None:
    """The same construction under the limit works: the 413 below is the cap's."""
    status, data = post_chunked(url, padded_deflate(CALL, 20_000), "deflate")
    assert status == 200
    assert xmlrpc.client.loads(data)[0][0] == "Server says: hi"


def test_compressed_padding_beyond_the_limit_is_413(url: str) -> None:
    body = padded_deflate(CALL, 250_000)
    assert len(body) > 2 * LIMIT and len(zlib.decompress(body)) < 1_000
    status, _ = post_chunked(url, body, "deflate")
    assert status == 413


def test_plain_chunked_body_beyond_the_limit_is_413(url: str) -> None:
    status, _ = post_chunked(url, CALL + b" " * 250_000, "identity")
    assert status == 413
