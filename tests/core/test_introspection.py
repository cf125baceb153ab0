"""Introspection, version namespaces, the GET page and HTTP methods, over real HTTP."""

from __future__ import annotations

import datetime
import xmlrpc.client
from typing import Any, Optional

import pytest
from core_helpers import call_body, new_app, post, proxy, running

from flask_rpcenable import RPCEnable
from flask_rpcenable.errors import INVALID_PARAMS, METHOD_NOT_FOUND

SYSTEM = ["system.listMethods", "system.methodHelp", "system.methodSignature", "system.multicall"]


def make_rpc() -> RPCEnable:
    rpc = RPCEnable()

    @rpc.register
    def add(a: int, b: int) -> int:
        """Add two integers.

        Returns their sum.
        """
        return a + b

    @rpc.register(name="text.greet")
    def greet(name: str, loud: bool = False) -> str:
        return name.upper() if loud else name

    @rpc.register
    def untyped(a, b=None):
        return [a, b]

    @rpc.register
    def typed(
        f: float,
        blob: bytes,
        when: datetime.datetime,
        items: list[int],
        mapping: dict[str, Any],
        maybe: Optional[int],  # noqa: UP045 - checking the typing form
        either: int | None,
        anything: Any,
    ) -> dict[str, Any]:
        return {}

    @rpc.register
    def hostile() -> None:
        """<script>alert("xss")</script> & <b>bold</b>"""

    @rpc.register(name="math.add", version=2)
    def add_v2(a: int, b: int, c: int = 0) -> int:
        """Add two or three integers (version 2)."""
        return a + b + c

    @rpc.register(name="add", version=3)
    def add_v3(numbers: list[int]) -> int:
        return sum(numbers)

    return rpc


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    app = new_app(tmp_path_factory.mktemp("intro"))
    make_rpc().init_app(app)
    with running(app) as url:
        yield url


@pytest.fixture
def url(base) -> str:
    return base + "/rpc/"


def test_list_methods(url):
    with proxy(url) as server:
        assert server.system.listMethods() == sorted(
            ["add", "hostile", "text.greet", "typed", "untyped", *SYSTEM]
        )


def test_each_version_is_its_own_namespace(url):
    with proxy(url + "v2/") as v2, proxy(url + "v3/") as v3:
        assert v2.system.listMethods() == ["math.add", *SYSTEM]
        assert v3.system.listMethods() == ["add", *SYSTEM]
        assert v2.math.add(1, 2) == 3 and v2.math.add(1, 2, 3) == 6
        assert v3.add([1, 2, 3]) == 6
        assert v2.system.methodHelp("math.add") == "Add two or three integers (version 2)."
        assert v2.system.methodSignature("math.add") == [
            ["int", "int", "int"],
            ["int", "int", "int", "int"],
        ]
        with pytest.raises(xmlrpc.client.Fault) as excinfo:
            v2.system.methodHelp("add")
        assert excinfo.value.faultCode == METHOD_NOT_FOUND
        # v3's add is not the default add
        with pytest.raises(xmlrpc.client.Fault) as excinfo:
            v3.add(1, 2)
        assert excinfo.value.faultCode == INVALID_PARAMS
        assert v2.system.multicall([{"methodName": "math.add", "params": [2, 2]}]) == [[4]]
    with proxy(url) as server:
        assert server.add(1, 2) == 3


def test_urls_without_the_trailing_slash(base):
    with proxy(base + "/rpc") as server, proxy(base + "/rpc/v2") as v2:
        assert server.add(1, 2) == 3
        assert v2.math.add(1, 2) == 3


@pytest.mark.parametrize("path", ["v9/", "v1/", "v0/", "v99999999/", "v02/", "v002", "v03/"])
def test_unknown_version_is_404(url, path):
    with proxy(url + path) as server, pytest.raises(xmlrpc.client.ProtocolError) as excinfo:
        server.system.listMethods()
    assert excinfo.value.errcode == 404
    assert post(url + path, call_body("add", 1, 2)).status == 404
    assert post(url + path, None, method="GET").status == 404
    with proxy(url) as server:
        assert server.add(1, 1) == 2


def test_method_help(url):
    with proxy(url) as server:
        assert server.system.methodHelp("add") == "Add two integers.\n\nReturns their sum."
        assert server.system.methodHelp("untyped") == ""
        assert "several calls" in server.system.methodHelp("system.multicall")
        assert server.system.methodHelp("system.listMethods")
        with pytest.raises(xmlrpc.client.Fault) as missing:
            server.system.methodHelp("nope")
        with pytest.raises(xmlrpc.client.Fault) as wrong:
            server.system.methodHelp()
        with pytest.raises(xmlrpc.client.Fault) as wrong_type:
            server.system.methodHelp(5)
    assert missing.value.faultCode == METHOD_NOT_FOUND
    assert wrong.value.faultCode == INVALID_PARAMS
    assert wrong_type.value.faultCode == INVALID_PARAMS


def test_method_signature_from_type_hints(url):
    with proxy(url) as server:
        assert server.system.methodSignature("add") == [["int", "int", "int"]]
        assert server.system.methodSignature("text.greet") == [
            ["string", "string"],
            ["string", "string", "boolean"],
        ]
        assert server.system.methodSignature("untyped") == [
            ["undef", "undef"],
            ["undef", "undef", "undef"],
        ]
        assert server.system.methodSignature("typed") == [
            [
                "struct",
                "double",
                "base64",
                "dateTime.iso8601",
                "array",
                "struct",
                "int",
                "int",
                "undef",
            ]
        ]
        assert server.system.methodSignature("hostile") == [["nil"]]
        assert server.system.methodSignature("system.methodSignature") == [["array", "string"]]
        with pytest.raises(xmlrpc.client.Fault) as excinfo:
            server.system.methodSignature("nope")
    assert excinfo.value.faultCode == METHOD_NOT_FOUND


def test_list_methods_takes_no_params(url):
    with proxy(url) as server, pytest.raises(xmlrpc.client.Fault) as excinfo:
        server.system.listMethods("x")
    assert excinfo.value.faultCode == INVALID_PARAMS


# -- the GET page -------------------------------------------------------------------


def test_get_page_lists_methods_with_signatures_and_docs(url):
    reply = post(url, None, method="GET")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    page = reply.body.decode()
    for name in ("add", "text.greet", "typed", "untyped", "system.multicall"):
        assert name in page
    assert "add(a: int, b: int) -&gt; int" in page
    assert "int add(int, int)" in page
    assert "Add two integers." in page
    assert "math.add" not in page  # v2 only
    assert 'href="/rpc/v2/"' in page and 'href="/rpc/v3/"' in page


def test_get_page_escapes_docstrings(url):
    page = post(url, None, method="GET").body.decode()
    assert "<script>" not in page
    assert "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(" in page
    assert "&amp; &lt;b&gt;bold&lt;/b&gt;" in page


def test_get_page_of_a_version(url):
    reply = post(url + "v2/", None, method="GET")
    assert reply.status == 200
    page = reply.body.decode()
    assert "math.add" in page and "version 2" in page
    assert "text.greet" not in page
    assert "Add two or three integers (version 2)." in page


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_http_methods_are_405_with_allow(url, method):
    reply = post(url, call_body("add", 1, 2), method=method)
    assert reply.status == 405
    allowed = {m.strip() for m in reply.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert method not in allowed
    reply = post(url + "v2/", b"", method=method)
    assert reply.status == 405
    with proxy(url) as server:
        assert server.add(2, 2) == 4


def test_get_page_can_be_switched_off(tmp_path):
    app = new_app(tmp_path, RPCENABLE_BROWSABLE=False)
    make_rpc().init_app(app)
    with running(app) as base:
        reply = post(base + "/rpc/", None, method="GET")
        assert reply.status == 405
        assert reply.headers["Allow"] == "POST"
        assert b"text.greet" not in reply.body
        with proxy(base + "/rpc/") as server:
            assert server.add(1, 2) == 3
