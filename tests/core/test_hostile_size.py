"""Oversized and compressed request bodies: the size limit with and without Content-Length,
gzip and deflate, bombs and corrupt or unknown encodings; each gets its exact status, memory
stays bounded, and the server lives on."""

from __future__ import annotations

import gzip
import random
import zlib

import pytest
from core_helpers import call_body, post
from hostile_helpers import LIMIT, PEAKS, post_measured, serving, still_answers


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("hostile")) as served:
        yield served


# -- size, compression ---------------------------------------------------------------


def padded_call(size: int) -> bytes:
    body = call_body("echo", "x")
    return body.replace(b"<string>x", b"<string>" + b"x" * (size - len(body) + 1))


def test_size_limit_exactly(url):
    body = padded_call(LIMIT)
    assert len(body) == LIMIT
    assert len(post(url, body).loads()) > LIMIT - 200


def test_over_the_limit_with_content_length_is_413(url, records):
    reply = post(url, padded_call(LIMIT + 1))
    assert reply.status == 413
    assert [(r.method, r.fault_code, r.request_size) for r in records] == [
        ("-", 413, LIMIT + 1)
    ]
    still_answers(url)


def test_far_over_the_limit_is_413_before_the_body_is_read(url, records):
    """Refused on the header alone; the server does not buffer the 4 MB."""
    body = padded_call(4 * 1024 * 1024)
    try:
        reply, peak = post_measured(url, body)
    except (BrokenPipeError, ConnectionResetError):
        # The server may hang up before the client finished sending: the
        # refusal is still checked, on the server's side.
        reply, peak = None, (PEAKS[0] if PEAKS else 0)
    if reply is not None:
        assert reply.status == 413
    assert [(r.method, r.fault_code) for r in records] == [("-", 413)]
    assert peak < 1024 * 1024, peak  # the body was not buffered
    still_answers(url)


def test_over_the_limit_chunked_is_413(url, records):
    body = padded_call(LIMIT * 3)
    chunks = [body[i : i + 8192] for i in range(0, len(body), 8192)]
    reply = post(url, iter(chunks))
    assert reply.status == 413
    assert records[0].method == "-" and records[0].fault_code == 413
    still_answers(url)


def test_chunked_under_the_limit_works(url):
    body = call_body("echo", "chunked")
    reply = post(url, iter([body[:10], body[10:50], body[50:]]))
    assert reply.loads() == "chunked"


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZip", "deflate"])
def test_compressed_body_is_accepted(url, encoding):
    body = call_body("echo", "compressed é" * 100)
    data = zlib.compress(body) if encoding == "deflate" else gzip.compress(body)
    reply = post(url, data, {"Content-Encoding": encoding})
    assert reply.loads() == "compressed é" * 100


def test_gzip_expanding_past_the_limit_is_413(url, records):
    body = gzip.compress(padded_call(LIMIT + 100))
    assert len(body) < LIMIT
    reply = post(url, body, {"Content-Encoding": "gzip"})
    assert reply.status == 413
    assert records[0].fault_code == 413
    still_answers(url)


def test_gzip_bomb_is_413_with_bounded_memory(url):
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < LIMIT  # passes the size check on the compressed body
    reply, peak = post_measured(url, bomb, {"Content-Encoding": "gzip"})
    assert reply.status == 413
    assert peak < 4 * LIMIT + 1024 * 1024, peak  # nowhere near 50 MB
    still_answers(url)


def test_compressed_body_over_the_limit_is_413(url):
    data = random.Random(1).randbytes(2 * LIMIT)  # incompressible
    body = gzip.compress(data)
    assert len(body) > LIMIT
    assert post(url, body, {"Content-Encoding": "gzip"}).status == 413
    still_answers(url)


@pytest.mark.parametrize("encoding", ["br", "compress", "zstd", "gzip, br", "identity;q=0"])
def test_unknown_content_encoding_is_415(url, records, encoding):
    reply = post(url, call_body("echo", "x"), {"Content-Encoding": encoding})
    assert reply.status == 415
    assert records[0].fault_code == 415
    still_answers(url)


def test_identity_content_encoding_is_fine(url):
    assert post(url, call_body("echo", "i"), {"Content-Encoding": "identity"}).loads() == "i"


@pytest.mark.parametrize(
    "data",
    [
        b"\x1f\x8b\x08\x00 this is not gzip at all",
        gzip.compress(call_body("echo", "x"))[:-12],  # truncated
        b"plain text said to be gzip",
    ],
    ids=["corrupt", "truncated", "not-gzip"],
)
def test_corrupt_gzip_is_400(url, records, data):
    reply = post(url, data, {"Content-Encoding": "gzip"})
    assert reply.status == 400
    assert records[0].fault_code == 400
    still_answers(url)


def test_a_small_call_does_not_allocate_the_limit(url):
    """The body is read by its Content-Length, not into a buffer of the limit's size."""
    reply, peak = post_measured(url, call_body("echo", "small"))
    assert reply.loads() == "small"
    assert peak < LIMIT // 2, peak
