"""The client's transport and response parser against real sockets:
timeouts, refused connections, keep-alive, stale connections, gzip and its
size cap, HTTP errors, unsafe or invalid responses, HTTPS verification."""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import xmlrpc.client
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client_helpers import CannedServer, SilentServer, free_port, self_signed_cert, xml_response

from flask_rpcenable.client.codec import decode_response
from flask_rpcenable.client.point import (
    BadResponse,
    ConnectError,
    ConnectTimeout,
    HTTPStatusError,
    ReadTimeout,
    ResponseTooLarge,
    TLSError,
    TransportError,
    XMLRPCPoint,
)
from flask_rpcenable.client.transport import DEFAULT_MAX_RESPONSE_SIZE

OK_INT = xml_response("<int>7</int>")


@pytest.fixture
def servers() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for server in started:
        server.stop() if hasattr(server, "stop") else server.close()


def canned(servers: list[Any], responder: Any, **kwargs: Any) -> CannedServer:
    server = CannedServer(responder, **kwargs)
    servers.append(server)
    return server


def fixed(body: bytes, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Any:
    return lambda _headers, _body: (status, headers or [("Content-Type", "text/xml")], body)


# -- timeouts and connection errors ----------------------------------------------


def test_read_timeout_on_a_server_that_never_answers(servers: list[Any]) -> None:
    silent = SilentServer()
    servers.append(silent)
    point = XMLRPCPoint(f"http://127.0.0.1:{silent.port}/", timeout=0.3)
    with pytest.raises(ReadTimeout) as info:
        point.echo("x")
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, OSError)
    assert not isinstance(info.value, ConnectError)
    assert "did not answer within 0.3 s" in str(info.value)


def test_tls_handshake_without_answer_is_a_connect_timeout(servers: list[Any]) -> None:
    silent = SilentServer()
    servers.append(silent)
    point = XMLRPCPoint(f"https://127.0.0.1:{silent.port}/", timeout=(0.3, 5))
    with pytest.raises(ConnectTimeout) as info:
        point.echo("x")
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, ConnectionError)
    assert "within 0.3 s" in str(info.value)


def test_connect_timeout_when_the_backlog_is_full() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        # Fill the accept queue until the kernel stops answering SYNs.
        for _ in range(8):
            filler = socket.socket()
            filler.settimeout(0.2)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.skip("this kernel accepted every connection")
        point = XMLRPCPoint(f"http://127.0.0.1:{port}/", timeout=(0.2, 5))
        with pytest.raises(ConnectTimeout, match="could not connect"):
            point.echo("x")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_connection_refused() -> None:
    point = XMLRPCPoint(f"http://127.0.0.1:{free_port()}/", timeout=5)
    with pytest.raises(ConnectError) as info:
        point.echo("x")
    assert isinstance(info.value, ConnectionError)
    assert info.value.errno is not None
    assert "could not connect to 127.0.0.1" in str(info.value)


# -- keep-alive ---------------------------------------------------------------------


def test_keep_alive_one_connection_for_many_calls(servers: list[Any]) -> None:
    server = canned(servers, fixed(OK_INT))
    with XMLRPCPoint(server.url) as point:
        assert [point.a(), point.b(), point.c.d()] == [7, 7, 7]
    assert server.connections == 1
    assert len(server.requests) == 3


def test_stale_keep_alive_connection_is_replaced(servers: list[Any]) -> None:
    server = canned(servers, fixed(OK_INT), close_after_response=True)
    with XMLRPCPoint(server.url) as point:
        assert point.a() == 7
        # The server closed the idle connection; the point notices and
        # reconnects once, transparently.
        assert point.b() == 7
    assert server.connections == 2
    assert len(server.requests) == 2


def test_threads_share_pooled_connections(servers: list[Any]) -> None:
    counter = iter(range(10_000))
    server = canned(servers, lambda h, b: (200, [], xml_response(f"<int>{next(counter)}</int>")))
    results: list[int] = []
    with XMLRPCPoint(server.url, pool_size=4) as point:

        def work() -> None:
            for _ in range(10):
                results.append(point.n())

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sorted(results) == list(range(40))
    # At most one connection per thread, each reused for its later calls.
    assert 1 <= server.connections <= 4


def test_request_headers(servers: list[Any]) -> None:
    server = canned(servers, fixed(OK_INT))
    with XMLRPCPoint(server.url, headers={"X-Trace": "abc"}) as point:
        point.ping()
    headers, body = server.requests[0]
    assert headers["X-Trace"] == "abc"
    assert headers["Content-Type"] == "text/xml; charset=utf-8"
    assert "gzip" in headers["Accept-Encoding"]
    assert headers["User-Agent"].startswith("Python-xmlrpc/")
    assert "Authorization" not in headers
    assert b"<methodName>ping</methodName>" in body


# -- gzip and size caps -------------------------------------------------------------


def test_gzip_and_deflate_responses(servers: list[Any]) -> None:
    gz = canned(servers, fixed(gzip.compress(OK_INT), headers=[("Content-Encoding", "gzip")]))
    df = canned(servers, fixed(zlib.compress(OK_INT), headers=[("Content-Encoding", "deflate")]))
    with XMLRPCPoint(gz.url) as p1, XMLRPCPoint(df.url) as p2:
        assert p1.a() == 7 and p1.b() == 7
        assert p2.a() == 7
    assert gz.connections == 1  # the compressed body was read to its end


def test_gzip_bomb_is_refused(servers: list[Any]) -> None:
    bomb = gzip.compress(b"<" * (8 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 64 * 1024
    server = canned(servers, fixed(bomb, headers=[("Content-Encoding", "gzip")]))
    with XMLRPCPoint(server.url, max_response_size=1024 * 1024) as point:
        with pytest.raises(ResponseTooLarge, match="larger than 1048576 bytes"):
            point.a()
        # The connection was dropped, not kept for reuse, and the point still
        # works afterwards: the next call meets the same cap, not a broken socket.
        assert point("transport")._idle == []
        with pytest.raises(ResponseTooLarge, match="larger than 1048576 bytes"):
            point.a()


def test_plain_response_over_the_cap(servers: list[Any]) -> None:
    big = xml_response("<string>" + "x" * 5000 + "</string>")
    server = canned(servers, fixed(big))
    with (
        XMLRPCPoint(server.url, max_response_size=1000) as point,
        pytest.raises(ResponseTooLarge, match=r"sent \d+ bytes; the limit is 1000"),
    ):
        point.a()  # refused from the Content-Length header
    chunked = canned(servers, lambda h, b: (
        200, [("Transfer-Encoding", "chunked")],
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)))
    with (
        XMLRPCPoint(chunked.url, max_response_size=1000) as point,
        pytest.raises(ResponseTooLarge, match="larger than 1000"),
    ):
        point.a()
    with XMLRPCPoint(chunked.url, max_response_size=10_000) as point:
        assert point.a() == "x" * 5000


def test_default_cap_is_50_mib() -> None:
    assert DEFAULT_MAX_RESPONSE_SIZE == 50 * 1024 * 1024
    assert XMLRPCPoint("http://127.0.0.1/")("transport").max_response_size == 50 * 1024 * 1024


def test_truncated_or_invalid_gzip(servers: list[Any]) -> None:
    data = gzip.compress(OK_INT)
    cut = canned(servers, fixed(data[:-12], headers=[("Content-Encoding", "gzip")]))
    junk = canned(servers, fixed(b"not gzip at all", headers=[("Content-Encoding", "gzip")]))
    odd = canned(servers, fixed(OK_INT, headers=[("Content-Encoding", "br")]))
    for server, message in ((cut, "truncated"), (junk, "invalid gzip"), (odd, "unsupported")):
        with XMLRPCPoint(server.url) as point, pytest.raises(BadResponse, match=message):
            point.a()


# -- HTTP errors and bad bodies -------------------------------------------------------


def test_http_error_status(servers: list[Any]) -> None:
    server = canned(servers, fixed(b"Not Found", status=404))
    with XMLRPCPoint(server.url) as point, pytest.raises(HTTPStatusError) as info:
        point.a()
    error = info.value
    assert isinstance(error, xmlrpc.client.ProtocolError) and isinstance(error, TransportError)
    assert error.errcode == 404 and error.errmsg == "Not Found"
    assert error.url == server.url
    assert "answered HTTP 404" in str(error)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<methodResponse><params><param><value><string>&lol2;</string></value></param></params>
</methodResponse>"""


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        BILLION_LAUGHS.decode().replace('"1.0"', '"1.0" encoding="utf-16"').encode("utf-16"),
        BILLION_LAUGHS.decode().replace('<?xml version="1.0"?>', "").encode("utf-16-le"),
        b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><methodResponse/>',
    ],
    ids=["entities", "utf-16-bom", "utf-16-le-no-bom", "external"],
)
def test_dtd_refused(body: bytes) -> None:
    with pytest.raises(BadResponse, match="document type declaration"):
        decode_response(body)


def test_dtd_refused_over_http(servers: list[Any]) -> None:
    server = canned(servers, fixed(BILLION_LAUGHS))
    with XMLRPCPoint(server.url) as point, pytest.raises(BadResponse, match="DTD"):
        point.a()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not well-formed"),
        (b"<html>oops</html>", "not <methodResponse>"),
        (b"<methodResponse><params><param><value><int>1</int></value></param>",
         "not well-formed"),
        (b"<methodResponse></methodResponse>", "not a valid XML-RPC response"),
        (xml_response("<int>12x</int>"), "invalid value"),
        (xml_response("<int>" + "9" * 5000 + "</int>"), "invalid value"),
        (xml_response("<array><data>" * 65 + "</data></array>" * 65), "deeper than 64"),
        (xml_response("<dateTime.iso8601>nope</dateTime.iso8601>"), ""),
    ],
    ids=["empty", "html", "unclosed", "no-params", "bad-int", "huge-int", "deep", "date"],
)
def test_invalid_responses(body: bytes, message: str) -> None:
    if message:
        with pytest.raises(BadResponse, match=message):
            decode_response(body)
    else:  # DateTime objects keep the text, as ServerProxy does
        assert decode_response(body).value == "nope"
        with pytest.raises(BadResponse):
            decode_response(body, use_builtin_types=True)


def test_decode_values_and_faults() -> None:
    nested = xml_response("<array><data>" * 64 + "<value>1</value>" + "</data></array>" * 64)
    value = decode_response(nested)
    for _ in range(63):
        value = value[0]
    assert value == ["1"]
    fault = xmlrpc.client.dumps(xmlrpc.client.Fault(-32601, "nope"), methodresponse=True)
    with pytest.raises(xmlrpc.client.Fault) as info:
        decode_response(fault.encode())
    assert info.value.faultCode == -32601
    i8 = xml_response("<i8>9007199254740993</i8>")
    assert decode_response(i8) == 9007199254740993
    assert decode_response(xml_response("<nil/>")) is None
    latin = b"<?xml version='1.0' encoding='iso-8859-1'?>" + xml_response(
        "<string>\xe9</string>").split(b"?>", 1)[1].replace(b"\xc3\xa9", b"\xe9")
    assert decode_response(latin) == "\xe9"


# -- HTTPS ------------------------------------------------------------------------------


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = self_signed_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = CannedServer(fixed(OK_INT), ssl_context=context)
    yield server.url, cert
    server.stop()


def test_https_verified_by_default(https_server: tuple[str, Path]) -> None:
    url, cert = https_server
    with XMLRPCPoint(url, timeout=5) as point, pytest.raises(TLSError) as info:
        point.a()
    assert "certificate verify failed" in str(info.value)
    assert isinstance(info.value, ConnectError)


def test_https_with_ca_file_or_context(https_server: tuple[str, Path]) -> None:
    url, cert = https_server
    with XMLRPCPoint(url, verify=str(cert), timeout=5) as point:
        assert point.a() == 7
        assert point.b() == 7
    context = ssl.create_default_context(cafile=str(cert))
    with XMLRPCPoint(url, context=context, timeout=5) as point:
        assert point.a() == 7


def test_https_verify_false(https_server: tuple[str, Path]) -> None:
    url, _cert = https_server
    with XMLRPCPoint(url, verify=False, timeout=5) as point:
        assert point.a() == 7
