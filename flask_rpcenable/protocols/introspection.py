"""``system.listMethods``, ``system.methodHelp`` and ``system.methodSignature``.

They describe one namespace of the registry. Signatures use XML-RPC's type
names (``int``, ``string``, ``struct``...), as the introspection convention
defines them; an authenticated method shows its scheme-v1 parameters first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..calls import CallContext, Params
from ..dispatch import SystemMethod
from ..errors import INVALID_PARAMS, METHOD_NOT_FOUND, RPCError

if TYPE_CHECKING:
    from ..dispatch import Dispatcher
    from ..registry import Procedure

__all__ = ["SYSTEM_HELP", "SYSTEM_SIGNATURES", "introspection_methods"]

SYSTEM_HELP = {
    "system.listMethods": "Return the names of the methods of this namespace.",
    "system.methodHelp": "Return the documentation of a method.",
    "system.methodSignature": (
        "Return the signatures of a method: lists of the return type followed by the "
        "parameter types."
    ),
    "system.multicall": (
        "Run several calls in one request. Takes an array of structs with 'methodName' and "
        "'params'; returns an array with [result] for each success and a fault struct for "
        "each failure, in order. Calls cannot be nested."
    ),
}
SYSTEM_SIGNATURES = {
    "system.listMethods": [["array"]],
    "system.methodHelp": [["string", "string"]],
    "system.methodSignature": [["array", "string"]],
    "system.multicall": [["array", "array"]],
}


def introspection_methods(
    dispatcher: Dispatcher, system_names: tuple[str, ...]
) -> dict[str, SystemMethod]:
    """The three introspection methods over ``dispatcher``'s registry.

    :param system_names: every ``system.*`` method the protocol offers, listed
        by ``system.listMethods`` and described by the other two.
    """

    def lookup(ctx: CallContext, params: Params, what: str) -> Procedure | None:
        if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], str):
            raise RPCError(INVALID_PARAMS, f"system.{what}(name: str): expected one method name")
        name = params[0]
        if name in system_names:
            return None
        procedure = dispatcher.registry.get(name, ctx.version)
        if procedure is None:
            raise RPCError(METHOD_NOT_FOUND, f"Method not found: {name!r}")
        return procedure

    def list_methods(ctx: CallContext, params: Params) -> list[str]:
        if params:
            raise RPCError(INVALID_PARAMS, "system.listMethods(): expected no parameters")
        names = [p.name for p in dispatcher.registry.methods(ctx.version)]
        return sorted([*names, *system_names])

    def method_help(ctx: CallContext, params: Params) -> str:
        procedure = lookup(ctx, params, "methodHelp")
        if procedure is None:
            return SYSTEM_HELP[params[0]]  # type: ignore[index]
        text = procedure.doc
        authenticator = dispatcher.authenticator
        if procedure.requires_auth and authenticator is not None:
            text = f"{text}\n\n{authenticator.help_text}".strip()
        return text

    def method_signature(ctx: CallContext, params: Params) -> list[list[str]]:
        procedure = lookup(ctx, params, "methodSignature")
        if procedure is None:
            return SYSTEM_SIGNATURES[params[0]]  # type: ignore[index]
        return procedure.checker.signatures(auth_params(dispatcher, procedure))

    return {
        "system.listMethods": SystemMethod(list_methods),
        "system.methodHelp": SystemMethod(method_help),
        "system.methodSignature": SystemMethod(method_signature),
    }


def auth_params(dispatcher: Dispatcher, procedure: Procedure) -> tuple[str, ...]:
    """The names of the auth parameters ``procedure`` takes first on the wire."""
    authenticator = dispatcher.authenticator
    if procedure.requires_auth and authenticator is not None:
        return tuple(authenticator.auth_param_names)
    return ()


