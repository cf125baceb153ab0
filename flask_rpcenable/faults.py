"""Fault codes of the wire contract and helpers to build faults.

Codes follow the XML-RPC fault-code interoperability convention; the
authentication codes keep django-rpcenable's numbers so that its clients keep
working.
"""

from __future__ import annotations

from xmlrpc.client import Fault

__all__ = [
    "APPLICATION_ERROR",
    "AUTH_BAD_NONCE",
    "AUTH_BAD_TIMESTAMP",
    "AUTH_FAILED",
    "AUTH_NONCE_USED",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "NOT_WELL_FORMED",
    "SYSTEM_ERROR",
    "Fault",
    "RequestError",
]

NOT_WELL_FORMED = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
APPLICATION_ERROR = -32500
#: The server cannot serve the call now (a setup it lacks, a dependency that is
#: down); the same call may work later. Never a bug in the method.
SYSTEM_ERROR = -32400

AUTH_BAD_NONCE = 401
AUTH_NONCE_USED = 402
AUTH_BAD_TIMESTAMP = 403
AUTH_FAILED = 406

#: The message every unexpected exception is reduced to on the wire.
APPLICATION_ERROR_MESSAGE = "Application error: the method failed; the server log has the details."


class RequestError(Fault):
    """A fault raised while decoding a request (before any method runs)."""
