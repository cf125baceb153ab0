"""The OpenRPC description of a namespace: ``rpc.discover`` and ``openrpc.json``.

:func:`openrpc_document` builds an `OpenRPC <https://spec.open-rpc.org/>`_
1.2.6 document from the registry: each method with its docstring, its
parameters and result as JSON Schemas worked out from the type hints, and,
for a method that needs authentication, the scheme-v1 parameters, the
authentication errors, a tag ``authenticated`` and an ``x-authentication``
member naming the schemes. ``rpc.discover`` (over JSON-RPC) and ``GET
<prefix>/openrpc.json`` (the view) serve the same document.
"""

from __future__ import annotations

import collections.abc
import datetime
import inspect
import types
import typing
from typing import TYPE_CHECKING, Any

from flask import current_app, request

from ..calls import CallContext, Params
from ..dispatch import SystemMethod
from ..errors import (
    AUTH_BAD_NONCE,
    AUTH_BAD_TIMESTAMP,
    AUTH_FAILED,
    AUTH_NONCE_USED,
    INVALID_PARAMS,
    RPCError,
)
from .introspection import SYSTEM_HELP, auth_params

if TYPE_CHECKING:
    from ..registry import Procedure
    from ..state import RPCState

__all__ = [
    "DISCOVER",
    "OPENRPC_VERSION",
    "discover_method",
    "example_params",
    "json_schema",
    "openrpc_document",
]

DISCOVER = "rpc.discover"
OPENRPC_VERSION = "1.2.6"

_SIMPLE: dict[Any, dict[str, Any]] = {
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bytes: {"type": "string", "contentEncoding": "base64"},
    bytearray: {"type": "string", "contentEncoding": "base64"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    type(None): {"type": "null"},
}
_ARRAYS = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Iterable)
_OBJECTS = (dict, collections.abc.Mapping)

_V1_DESCRIPTIONS = {
    "nonce": "Scheme v1: 16 to 128 characters of A-Z, a-z, 0-9, '_' and '-', used once.",
    "timestamp": "Scheme v1: Unix seconds (an integer or a string of digits).",
    "username": "Scheme v1: the API user's name.",
    "signature": (
        "Scheme v1: lowercase hex HMAC-SHA256, keyed with the API key, of "
        "'{nonce};{timestamp};{username}'."
    ),
}
_V1_SCHEMAS = {"timestamp": {"type": ["integer", "string"]}}
_AUTH_ERRORS = [
    {"code": AUTH_BAD_NONCE, "message": "Authentication failed: malformed nonce"},
    {"code": AUTH_NONCE_USED, "message": "Authentication failed: this nonce was already used"},
    {"code": AUTH_BAD_TIMESTAMP, "message": "Authentication failed: bad or stale timestamp"},
    {"code": AUTH_FAILED, "message": "Authentication failed"},
]
_SYSTEM_METHODS: dict[str, tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]] = {
    "system.listMethods": ([], {"type": "array", "items": {"type": "string"}}),
    "system.methodHelp": ([("name", {"type": "string"})], {"type": "string"}),
    "system.methodSignature": (
        [("name", {"type": "string"})],
        {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
    ),
}


def json_schema(annotation: Any) -> dict[str, Any]:
    """The JSON Schema of the values a type hint stands for; ``{}`` (anything)
    for no hint, ``Any`` or a type with no JSON meaning."""
    if annotation is inspect.Parameter.empty or annotation is Any or isinstance(annotation, str):
        return {}
    if annotation is None:
        return {"type": "null"}
    origin = typing.get_origin(annotation) or annotation
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [json_schema(member) for member in args]
        return {} if {} in members else {"anyOf": members}
    if origin is typing.Literal:
        return {"enum": list(args)}
    simple = _SIMPLE.get(origin)
    if simple is not None:
        return dict(simple)
    if origin in _ARRAYS:
        schema: dict[str, Any] = {"type": "array"}
        if args and (origin is not tuple or (len(args) == 2 and args[1] is Ellipsis)):
            items = json_schema(args[0])
            if items:
                schema["items"] = items
        return schema
    if origin in _OBJECTS:
        schema = {"type": "object"}
        if len(args) == 2:
            values = json_schema(args[1])
            if values:
                schema["additionalProperties"] = values
        return schema
    return {}


_EXAMPLES = {
    "integer": 1,
    "number": 1.5,
    "string": "text",
    "boolean": True,
    "array": [],
    "object": {},
    "null": None,
}


def example_params(procedure: Procedure) -> dict[str, Any]:
    """Made-up values for ``procedure``'s required parameters, by name, for
    examples (the curl command of the method page)."""
    checker = procedure.checker
    params = {}
    for name, annotation in zip(checker.names, checker.annotations, strict=True):
        if len(params) >= checker.required:
            break
        kind = json_schema(annotation).get("type")
        params[name] = _EXAMPLES.get(kind, "value") if isinstance(kind, str) else "value"
    return params


def _summary(doc: str) -> str | None:
    first = doc.strip().split("\n\n", 1)[0].replace("\n", " ").strip()
    return first or None


def _method(state: RPCState, procedure: Procedure) -> dict[str, Any]:
    checker = procedure.checker
    params: list[dict[str, Any]] = []
    for name in auth_params(state.dispatcher, procedure):
        params.append(
            {
                "name": name,
                "description": _V1_DESCRIPTIONS.get(name, "Scheme v1 authentication."),
                "schema": _V1_SCHEMAS.get(name, {"type": "string"}),
                "required": False,
            }
        )
    hints = zip(checker.names, checker.annotations, strict=True)
    for position, (name, annotation) in enumerate(hints):
        params.append(
            {
                "name": name,
                "schema": json_schema(annotation),
                "required": position < checker.required,
            }
        )
    method: dict[str, Any] = {
        "name": procedure.name,
        "params": params,
        "result": {"name": "result", "schema": json_schema(checker.return_annotation)},
        "paramStructure": "by-position" if checker.has_var_positional else "either",
    }
    doc = procedure.doc
    authenticator = state.dispatcher.authenticator
    if procedure.requires_auth:
        schemes = list(getattr(authenticator, "schemes", ("v1", "v2")))
        method["tags"] = [{"name": "authenticated"}]
        method["errors"] = list(_AUTH_ERRORS)
        method["x-authentication"] = {"schemes": schemes}
        if authenticator is not None:
            doc = f"{doc}\n\n{authenticator.help_text}".strip()
    if doc:
        method["description"] = doc
        summary = _summary(procedure.doc)
        if summary:
            method["summary"] = summary
    return method


def _system_method(name: str) -> dict[str, Any]:
    params, result = _SYSTEM_METHODS[name]
    return {
        "name": name,
        "description": SYSTEM_HELP[name],
        "params": [{"name": p, "schema": schema, "required": True} for p, schema in params],
        "result": {"name": "result", "schema": result},
    }


def openrpc_document(
    state: RPCState,
    version: int | None,
    server_url: str,
    system_names: tuple[str, ...] = tuple(_SYSTEM_METHODS),
) -> dict[str, Any]:
    """The OpenRPC document of ``version``'s namespace.

    :param server_url: the endpoint's absolute URL, named in ``servers``.
    :param system_names: the ``system.*`` methods described beside the
        registry's (the JSON-RPC handler's introspection methods).
    """
    methods = [_method(state, p) for p in state.registry.methods(version)]
    methods += [_system_method(name) for name in system_names if name in _SYSTEM_METHODS]
    where = "the default namespace" if version is None else f"version {version}"
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {
            "title": f"{current_app.name} RPC",
            "version": "default" if version is None else str(version),
            "description": (
                f"The methods of {where}, over JSON-RPC 2.0 (Content-Type: application/json) "
                "and XML-RPC (Content-Type: text/xml) at the same URL."
            ),
        },
        "servers": [{"name": where, "url": server_url}],
        "methods": methods,
    }


def discover_method(state: RPCState, system_names: tuple[str, ...]) -> SystemMethod:
    """``rpc.discover``: the namespace's document, for the endpoint it was called on."""

    def discover(ctx: CallContext, params: Params) -> dict[str, Any]:
        if params:
            raise RPCError(INVALID_PARAMS, "rpc.discover(): expected no parameters")
        return openrpc_document(state, ctx.version, request.base_url, system_names)

    return SystemMethod(discover)
