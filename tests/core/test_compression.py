"""Reading bodies with a cap: one helper for the endpoint and the client."""

from __future__ import annotations

import gzip
import io
import xmlrpc.client
import zlib

import pytest
from flask import Flask

from flask_rpcenable.compression import (
    BadCompression,
    TooLarge,
    UnsupportedEncoding,
    read_capped,
)


def reader(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def test_identity_and_compressed_bodies_come_back_whole() -> None:
    body = b"<x>" * 1000
    assert read_capped(reader(body).read, "identity", 10_000) == body
    assert read_capped(reader(gzip.compress(body)).read, "gzip", 10_000) == body
    assert read_capped(reader(zlib.compress(body)).read, " Deflate ", 10_000) == body
    assert read_capped(reader(body).read, "", 10_000, length=len(body)) == body


def test_caps_on_read_and_inflated_bytes() -> None:
    with pytest.raises(TooLarge):
        read_capped(reader(b"x" * 101).read, "identity", 100)
    bomb = gzip.compress(b"\0" * 1_000_000)
    assert len(bomb) < 2_000
    with pytest.raises(TooLarge):
        read_capped(reader(bomb).read, "gzip", 100_000)
    # exactly at the limit is fine
    assert len(read_capped(reader(gzip.compress(b"a" * 100)).read, "gzip", 100)) == 100


def test_refused_encodings_and_broken_streams() -> None:
    with pytest.raises(UnsupportedEncoding):
        read_capped(reader(b"x").read, "br", 100)
    with pytest.raises(BadCompression, match="truncated"):
        read_capped(reader(gzip.compress(b"hello" * 100)[:-12]).read, "gzip", 10_000)
    with pytest.raises(BadCompression, match="invalid"):
        read_capped(reader(b"not gzip at all").read, "gzip", 10_000)
    with pytest.raises(BadCompression, match="after the end"):
        read_capped(reader(gzip.compress(b"hello") + b"<smuggled/>").read, "gzip", 10_000)


def test_endpoint_refuses_data_after_the_gzip_stream(app: Flask) -> None:
    body = xmlrpc.client.dumps((), "system.listMethods").encode()
    client = app.test_client()
    headers = {"Content-Encoding": "gzip", "Content-Type": "text/xml"}
    good = client.post("/rpc/", data=gzip.compress(body), headers=headers)
    assert good.status_code == 200
    smuggled = client.post("/rpc/", data=gzip.compress(body) + b"<x/>", headers=headers)
    assert smuggled.status_code == 400
    assert b"Traceback" not in smuggled.data
