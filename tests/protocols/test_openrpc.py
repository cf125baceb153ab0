"""The OpenRPC document (``rpc.discover`` and ``GET <prefix>/openrpc.json``)
validates against the OpenRPC meta-schema shipped beside this file."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pytest
from auth_helpers import make_env
from flask import Flask
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from flask_rpcenable import RPCEnable

SCHEMAS = Path(__file__).parent / "schemas"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    meta = json.loads((SCHEMAS / "openrpc-meta-schema-1.14.9.json").read_text())
    tools = json.loads((SCHEMAS / "json-schema-tools-meta-schema-1.8.0.json").read_text())
    registry: Registry = Registry().with_resources(
        [
            (url, Resource.from_contents(tools, default_specification=DRAFT7))
            for url in ("https://meta.json-schema.tools", "https://meta.json-schema.tools/")
        ]
    )
    return jsonschema.Draft7Validator(meta, registry=registry)


def typed_app(make_app: Callable[..., Flask]) -> Flask:
    rpc = RPCEnable()

    @rpc.register
    def describe(name: str, count: int = 1, ratio: float = 0.5, flags: list[bool] | None = None,
                 extra: dict[str, int] | None = None, when: datetime.datetime | None = None,
                 data: bytes = b"", mode: Literal["a", "b"] = "a", anything: Any = None) -> str:
        """Describe a thing.

        A longer text about it.
        """
        return name

    @rpc.register(name="math.add", version=2)
    def add(a: int, b: int) -> int:
        return a + b

    @rpc.register
    def spread(*values: int) -> list[int]:
        return list(values)

    app = make_app()
    rpc.init_app(app)
    return app


def test_document_validates_and_describes_types(
    make_app: Callable[..., Flask], validator: Any
) -> None:
    app = typed_app(make_app)
    response = app.test_client().get("/rpc/openrpc.json")
    assert response.status_code == 200 and response.content_type == "application/json"
    document = response.get_json()
    validator.validate(document)
    methods = {m["name"]: m for m in document["methods"]}
    assert "math.add" not in methods and "system.listMethods" in methods
    assert "system.multicall" not in methods
    describe = methods["describe"]
    assert describe["summary"] == "Describe a thing."
    params = {p["name"]: p for p in describe["params"]}
    assert [p["name"] for p in describe["params"]][:3] == ["name", "count", "ratio"]
    assert params["name"] == {"name": "name", "schema": {"type": "string"}, "required": True}
    assert params["count"]["schema"] == {"type": "integer"} and not params["count"]["required"]
    assert params["flags"]["schema"] == {
        "anyOf": [{"type": "array", "items": {"type": "boolean"}}, {"type": "null"}]}
    assert params["extra"]["schema"]["anyOf"][0] == {
        "type": "object", "additionalProperties": {"type": "integer"}}
    assert params["when"]["schema"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert params["data"]["schema"] == {"type": "string", "contentEncoding": "base64"}
    assert params["mode"]["schema"] == {"enum": ["a", "b"]}
    assert params["anything"]["schema"] == {}
    assert describe["result"]["schema"] == {"type": "string"}
    assert methods["spread"]["paramStructure"] == "by-position"
    assert document["servers"][0]["url"] == "http://localhost/rpc/"
    # The same document from rpc.discover, and per version.
    discovered = app.test_client().post(
        "/rpc/", json={"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}
    ).get_json()["result"]
    assert discovered == document
    v2 = app.test_client().get("/rpc/v2/openrpc.json").get_json()
    validator.validate(v2)
    assert [m["name"] for m in v2["methods"]][0] == "math.add"
    assert v2["servers"][0]["url"] == "http://localhost/rpc/v2/"
    assert app.test_client().get("/rpc/v3/openrpc.json").status_code == 404
    assert app.test_client().get("/rpc/v02/openrpc.json").status_code == 404


def test_authenticated_methods_are_marked(tmp_path: Path, validator: Any) -> None:
    env = make_env(tmp_path)
    document = env.app.test_client().get("/rpc/openrpc.json").get_json()
    validator.validate(document)
    method = next(m for m in document["methods"] if m["name"] == "auth_echo")
    assert method["tags"] == [{"name": "authenticated"}]
    assert method["x-authentication"] == {"schemes": ["v1", "v2"]}
    assert [p["name"] for p in method["params"]] == [
        "nonce", "timestamp", "username", "signature", "var"]
    assert {e["code"] for e in method["errors"]} == {401, 402, 403, 406}
    assert "Requires authentication" in method["description"]
    public = next(m for m in document["methods"] if m["name"] == "echo")
    assert "tags" not in public


def test_the_meta_schema_catches_a_broken_document(
    make_app: Callable[..., Flask], validator: Any
) -> None:
    document = typed_app(make_app).test_client().get("/rpc/openrpc.json").get_json()
    del document["methods"][0]["params"][0]["schema"]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(document)


def test_method_page_describes_both_protocols(make_app: Callable[..., Flask]) -> None:
    page = typed_app(make_app).test_client().get("/rpc/").get_data(as_text=True)
    assert "JSON-RPC 2.0" in page and "XML-RPC" in page
    assert 'href="/rpc/openrpc.json"' in page
    assert page.count("curl -s http://localhost/rpc/ -H 'Content-Type: application/json'") == 2
    assert "&#34;method&#34;: &#34;describe&#34;, &#34;params&#34;: {&#34;name&#34;: " in page
