"""Bounded cost per hostile request (issue 12): memory and time, measured on a real server.

The server runs in its own process, so that its peak resident memory
(``VmHWM``, reset before each request through ``/proc/<pid>/clear_refs``)
counts only what that request cost: lxml's tree lives in C memory, which
``tracemalloc`` does not see, and a server thread in the test process would
share its peak with the test's own allocations.
"""

from __future__ import annotations

import gzip
import http.client
import io
import os
import subprocess
import sys
import textwrap
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flask_rpcenable.compression import TooExpanded, read_capped
from flask_rpcenable.errors import INVALID_PARAMS, INVALID_REQUEST, RPCError
from flask_rpcenable.protocols import xmlrpc_codec as codec
from flask_rpcenable.protocols.xmlrpc_parse import CHUNK

MB = 1024 * 1024
HEAD = b"<methodCall><methodName>echo</methodName>"

#: The hostile bodies of issue 12 (each about 10 MB, under the default size limit).
HOSTILE = {
    "unclosed-tags": HEAD + b"<x>" + b"<a>" * 3_400_000,
    "ignored-siblings": HEAD + b"<x>" + b"<a/>" * 2_600_000 + b"</x></methodCall>",
    "root-attributes": b"<methodCall "
    + b" ".join(b'a%d="x"' % i for i in range(820_000))
    + b"><methodName>echo</methodName></methodCall>",
    "flat-array": HEAD
    + b"<params><param><value><array><data>"
    + b"<value/>" * 1_300_000
    + b"</data></array></value></param></params></methodCall>",
}

SERVER = textwrap.dedent(
    """
    import sys
    from flask import Flask
    from werkzeug.serving import make_server
    from flask_rpcenable import RPCEnable

    app = Flask("bounds", instance_path=sys.argv[1])
    app.config.update(SECRET_KEY="bounds-test-secret-key-0123456789")
    rpc = RPCEnable()

    @rpc.register
    def echo(value=""):
        return value

    rpc.init_app(app)
    server = make_server("127.0.0.1", 0, app)
    print(server.server_port, flush=True)
    server.serve_forever()
    """
)


class Server:
    """The app in a subprocess: POST bodies, read its peak memory per request."""

    def __init__(self, instance: Path) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", SERVER, str(instance)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def status(self, key: str) -> int:
        """A ``/proc/<pid>/status`` value in bytes (``VmRSS``, ``VmHWM``)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("POST", "/rpc/", body, {"Content-Type": "text/xml", **(headers or {})})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def measured(self, body: bytes, headers: dict[str, str] | None = None) -> Any:
        """Post; return (status, response body, peak memory growth, seconds)."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")  # reset VmHWM
        base = self.status("VmRSS")
        start = time.monotonic()
        status, data = self.post(body, headers)
        seconds = time.monotonic() - start
        return status, data, self.status("VmHWM") - base, seconds

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/<pid>/clear_refs to read a peak per request")
    running = Server(tmp_path_factory.mktemp("bounds"))
    try:
        # Warm up: the first request imports and builds what every later one uses.
        assert running.post(xmlrpc.client.dumps(("warm",), "echo").encode())[0] == 200
        yield running
    finally:
        running.stop()


def fault_code(data: bytes) -> int:
    with pytest.raises(xmlrpc.client.Fault) as excinfo:
        xmlrpc.client.loads(data)
    return excinfo.value.faultCode


def bound(body: bytes) -> int:
    """A few times the body's size, plus a fixed allowance for the server's own work."""
    return 3 * len(body) + 24 * MB


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_body_costs_bounded_memory_and_time(server: Server, name: str) -> None:
    body = HOSTILE[name]
    assert 9 * MB < len(body) <= 10 * MB  # under the default RPCENABLE_MAX_REQUEST_SIZE
    status, data, growth, seconds = server.measured(body)
    assert status == 200
    assert fault_code(data) == INVALID_REQUEST
    assert growth < bound(body), (name, growth // MB)
    assert seconds < 2.0, (name, seconds)
    assert server.post(xmlrpc.client.dumps(("next",), "echo").encode())[0] == 200


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_body_gzipped_costs_bounded_memory_and_time(server: Server, name: str) -> None:
    body = gzip.compress(HOSTILE[name])
    status, data, growth, seconds = server.measured(body, {"Content-Encoding": "gzip"})
    if status == 200:  # inflated within the ratio: the codec refuses it
        assert fault_code(data) == INVALID_REQUEST
    else:  # past the expansion ratio
        assert status == 413
    assert growth < bound(HOSTILE[name]), (name, growth // MB)
    assert seconds < 2.0, (name, seconds)


def test_a_valid_big_call_is_answered(server: Server) -> None:
    values = [{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(2000)]
    status, data, growth, seconds = server.measured(xmlrpc.client.dumps((values,), "echo").encode())
    assert status == 200
    assert xmlrpc.client.loads(data)[0][0] == values
    assert seconds < 2.0


def test_a_huge_multicall_is_refused_before_its_entries_are_decoded(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Entries of one member each: 600,000 elements, under the element cap.
    entry = b"<value><struct><member><name>methodName</name><value>echo</value></member>"
    entry += b"</struct></value>"
    body = b"<methodCall><methodName>system.multicall</methodName><params><param><value>"
    body += b"<array><data>" + entry * 100_000 + b"</data></array></value></param></params>"
    body += b"</methodCall>"

    def never(*args: Any) -> Any:
        raise AssertionError("an entry was decoded")

    monkeypatch.setattr(codec._Walker, "value", never)
    monkeypatch.setattr(codec.etree, "fromstring", never)  # nor was the whole tree built
    with pytest.raises(RPCError) as excinfo:
        codec.decode_request(body, max_multicall=1000)
    assert excinfo.value.code == INVALID_PARAMS
    assert getattr(excinfo.value, "method", None) == "system.multicall"
    monkeypatch.undo()
    status, data, growth, seconds = server.measured(body)
    assert status == 200 and fault_code(data) == INVALID_PARAMS
    assert seconds < 2.0
    # The body is read whole (8 MB; 17 MB measured), but of its 600,000
    # elements only the first chunks are parsed: the whole tree would be
    # about 90 MB.
    assert growth < 3 * len(body), growth // MB


def _multicall(entries: list[bytes]) -> bytes:
    head = b"<methodCall><methodName>system.multicall</methodName><params><param><value>"
    tail = b"</value></param></params></methodCall>"
    return head + b"<array><data>" + b"".join(entries) + b"</data></array>" + tail


def _entry(params: bytes = b"") -> bytes:
    member = b"<member><name>methodName</name><value>echo</value></member>"
    if params:
        member += b"<member><name>params</name><value><array><data>" + params
        member += b"</data></array></value></member>"
    return b"<value><struct>" + member + b"</struct></value>"


def test_a_multicall_that_only_looks_long_is_decoded() -> None:
    # Each entry's params hold a struct with a "methodName" member: more such
    # names than the limit, but no more entries; decoded as usual.
    inner = b"<value><struct><member><name>methodName</name><value>x</value></member>"
    inner += b"</struct></value>"
    body = _multicall([_entry(inner * 3)] * 10)
    call = codec.decode_request(body, max_multicall=10)
    assert len(call.params[0]) == 10
    assert call.params[0][0]["params"] == [{"methodName": "x"}] * 3
    with pytest.raises(RPCError) as excinfo:
        codec.decode_request(_multicall([_entry(inner)] * 11), max_multicall=10)
    assert excinfo.value.code == INVALID_PARAMS


def test_a_long_multicall_that_is_not_well_formed_is_32700() -> None:
    body = _multicall([_entry()] * 20).replace(b"</data></array>", b"</data></oops>")
    with pytest.raises(RPCError) as excinfo:
        codec.decode_request(body, max_multicall=100)  # not refused: parsed, then not well-formed
    assert excinfo.value.code == -32700
    # A long one is refused for its length as soon as the count passes the
    # limit, chunks before its broken end is read.
    long = _multicall([_entry()] * 3000).replace(b"</data></array>", b"</data></oops>")
    assert len(long) > 3 * CHUNK
    with pytest.raises(RPCError) as excinfo:
        codec.decode_request(long, max_multicall=10)
    assert excinfo.value.code == INVALID_PARAMS


def test_only_the_call_s_own_array_is_counted() -> None:
    # An echo of many entry-like structs is no multicall.
    body = _multicall([_entry()] * 20).replace(b"system.multicall", b"echo")
    assert len(codec.decode_request(body, max_multicall=5).params[0]) == 20
    # A multicall whose first parameter is no array, but holds a long one
    # deeper down, is not refused for its length (its entries fail one by one).
    nested = (
        _multicall([_entry()] * 20)
        .replace(
            b"<param><value><array>", b"<param><value><struct><member><name>x</name><value><array>"
        )
        .replace(b"</array></value></param>", b"</array></value></member></struct></value></param>")
    )
    assert codec.decode_request(nested, max_multicall=5).method == "system.multicall"


def test_the_measure_sees_a_request_that_costs_memory(server: Server) -> None:
    """The peak is read per request: a call of 8 MB shows it."""
    big = ["x" * 100] * 60_000  # about 8 MB of XML, parsed into a list
    body = xmlrpc.client.dumps((big,), "echo").encode()
    status, _, growth, _ = server.measured(body)
    assert status == 200
    assert growth > len(body), growth  # the body alone is read into memory


@pytest.mark.skipif(os.name != "posix", reason="Linux /proc only")
def test_element_cap_is_a_setting() -> None:
    body = HEAD + b"<params>" + b"<param><value><int>1</int></value></param>" * 10 + b"</params>"
    body += b"</methodCall>"
    assert codec.decode_request(body, max_elements=100).params == [1] * 10
    with pytest.raises(RPCError, match="more than 30 elements"):
        codec.decode_request(body, max_elements=30)


def test_the_expansion_ratio_is_capped() -> None:
    bomb = gzip.compress(HOSTILE["unclosed-tags"])
    with pytest.raises(TooExpanded):
        read_capped(io.BytesIO(bomb).read, "gzip", 10 * MB)
    # Repetitive but real: 100,000 zeros compress 400 times, and pass.
    zeros = xmlrpc.client.dumps(([0] * 100_000,), "echo").encode()
    assert read_capped(io.BytesIO(gzip.compress(zeros)).read, "gzip", 10 * MB) == zeros
    # Small bodies never meet the ratio.
    small = b"<a/>" * 100_000
    assert read_capped(io.BytesIO(gzip.compress(small)).read, "gzip", 10 * MB) == small


def test_a_gzip_bomb_of_tags_is_413_on_the_wire(server: Server) -> None:
    body = gzip.compress(HOSTILE["unclosed-tags"])
    status, _, growth, _ = server.measured(body, {"Content-Encoding": "gzip"})
    assert status == 413
    assert growth < bound(body), growth // MB
