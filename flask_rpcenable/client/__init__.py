"""The client: logged, authenticated XML-RPC and JSON-RPC calls to other servers.

- ``point``: :class:`~.point.XMLRPCPoint`;
- ``jsonrpc``: :class:`~.jsonrpc.JSONRPCPoint`, the same over JSON-RPC 2.0;
- ``transport``: HTTP with a connection pool, timeouts and size caps;
- ``codec``: safe decoding of responses, multicall;
- ``errors``: the exceptions;
- ``cli``: ``flask rpc call``; ``console``: the ``rpcenable`` script.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

from ..cli import rpc_cli
from .cli import call_command
from .jsonrpc import JSONRPCError, JSONRPCPoint
from .point import XMLRPCPoint

if TYPE_CHECKING:
    from ..state import RPCState

__all__ = ["JSONRPCError", "JSONRPCPoint", "XMLRPCPoint", "init_app"]


def init_app(app: Flask, state: RPCState) -> None:
    """Add ``flask rpc call``; the client has no settings of its own.

    Outgoing calls are logged under ``RPCENABLE_LOG_OUTGOING``, a setting of
    the call log (:mod:`flask_rpcenable.calllog`).
    """
    if state.primary:
        rpc_cli.add_command(call_command)
