"""Issue 14, item 7: malformed and mutated bodies against a real server.

Whatever arrives (random bytes, truncated or mutated valid calls, wrong
tags, wrong types), the answer is an XML-RPC fault or a 4xx, never a 500,
and the server keeps answering.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import xmlrpc.client
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from fuzz_app import fuzz_rpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live import build_app, serving

VALID = [
    xmlrpc.client.dumps(("hi",), "echo").encode(),
    xmlrpc.client.dumps((1, 2), "add").encode(),
    xmlrpc.client.dumps(({"a": [1, 2.5, True, None]},), "take", allow_none=True).encode(),
    xmlrpc.client.dumps(([{"methodName": "echo", "params": ["x"]},
                          {"methodName": "add", "params": [1, "2"]}],),
                        "system.multicall").encode(),
    xmlrpc.client.dumps(("n" * 20, 1, "alice", "0" * 64), "guarded").encode(),
]
TAGS = [b"<methodCall>", b"</methodCall>", b"<params>", b"<param>", b"<value>", b"</value>",
        b"<int>", b"<i8>", b"<double>", b"<boolean>", b"<string>", b"<base64>", b"<array>",
        b"<data>", b"<struct>", b"<member>", b"<name>", b"<nil/>", b"<dateTime.iso8601>",
        b"<!DOCTYPE x>", b"<?xml version='1.0' encoding='utf-16'?>", b"&amp;", b"&x;",
        b"\xff\xfe", b"\x00", b"]]>", b"<![CDATA[", b"<methodName>", b"</methodName>"]
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app: Flask = build_app(tmp_path_factory.mktemp("fuzz"), RPCENABLE_LOG_INCOMING=True,
                           RPCENABLE_ADMIN_ENABLED=False, SECRET_KEY="fuzz-secret-0123456789")
    rpc = fuzz_rpc()
    rpc.init_app(app)
    with app.app_context():
        rpc.state(app).db.create_all()
    with serving() as serve:
        yield serve(app).url + "/rpc/"


def post(url: str, body: bytes, content_type: str | None = "text/xml") -> tuple[int, bytes, str]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {} if content_type is None else {"Content-Type": content_type}
    try:
        connection.request("POST", parts.path, body, headers)
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Content-Type") or ""
    finally:
        connection.close()


def check(url: str, body: bytes, content_type: str | None = "text/xml") -> None:
    status, data, answer_type = post(url, body, content_type)
    assert status < 500, (status, body[:200])
    if status == 200 and answer_type.startswith("application/json"):
        # Read by its first byte as JSON-RPC: an error object, or results.
        assert data == b"" or json.loads(data) is not None
    elif status == 200:
        with contextlib.suppress(xmlrpc.client.Fault):  # a fault is a fine answer
            xmlrpc.client.loads(data)
    else:
        assert 400 <= status < 500


def still_answers(url: str) -> None:
    status, data, _ = post(url, VALID[0])
    assert status == 200 and xmlrpc.client.loads(data)[0][0] == "hi"


@SETTINGS
@given(body=st.binary(max_size=2048))
def test_random_bytes(url: str, body: bytes) -> None:
    check(url, body)
    check(url, body, None)


@SETTINGS
@given(base=st.sampled_from(VALID), cut=st.integers(min_value=0, max_value=2000))
def test_truncated_calls(url: str, base: bytes, cut: int) -> None:
    check(url, base[: cut % (len(base) + 1)])


def _mutate(base: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(base)
    for position, kind, chunk in edits:
        at = position % (len(data) + 1)
        if kind == 0:
            data[at:at] = chunk  # insert
        elif kind == 1:
            del data[at : at + len(chunk)]  # delete
        else:
            data[at : at + len(chunk)] = chunk  # overwrite
    return bytes(data)


@SETTINGS
@given(
    base=st.sampled_from(VALID),
    edits=st.lists(
        st.tuples(st.integers(0, 5000), st.integers(0, 2),
                  st.one_of(st.sampled_from(TAGS), st.binary(min_size=1, max_size=8))),
        min_size=1, max_size=6,
    ),
)
def test_mutated_calls(url: str, base: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    check(url, _mutate(base, edits))


values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(),
              st.text(max_size=30), st.binary(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


@SETTINGS
@given(method=st.sampled_from(["echo", "add", "take", "guarded", "system.multicall",
                               "system.methodHelp", "system.methodSignature", "nope", ""]),
       params=st.lists(values, max_size=5))
def test_wrong_types(url: str, method: str, params: list[Any]) -> None:
    try:
        body = xmlrpc.client.dumps(
            tuple(xmlrpc.client.Binary(p) if isinstance(p, bytes) else p for p in params),
            method, allow_none=True,
        ).encode()
    except (OverflowError, TypeError):
        return  # not expressible in XML-RPC
    check(url, body)


def test_server_still_answers_after_fuzzing(url: str) -> None:
    for body in VALID:
        check(url, body)
    still_answers(url)

