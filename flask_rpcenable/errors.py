"""Error codes of the wire contract, and the one error type calls fail with.

:class:`RPCError` is what the dispatcher, the parameter checks and the
authenticator raise: a code and a message, in no wire format. Each protocol
handler turns it into its own form (an XML-RPC fault, a JSON-RPC error).
Codes follow the XML-RPC fault-code interoperability convention; the
authentication codes keep django-rpcenable's numbers so that its clients
keep working. A procedure may still raise :class:`xmlrpc.client.Fault`
(``flask_rpcenable.Fault``): its code and string pass through unchanged.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APPLICATION_ERROR",
    "APPLICATION_ERROR_MESSAGE",
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
    "RPCError",
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


class RPCError(Exception):
    """A call that failed with a code and a message a client may see.

    :param code: one of the codes above, or a procedure's own (from a
        :class:`~xmlrpc.client.Fault` it raised).
    :param message: the text sent to the client.
    """

    def __init__(self, code: Any, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    @property
    def faultCode(self) -> Any:  # noqa: N802 - the name xmlrpc.client.Fault uses
        """The code, under the name signal receivers written for 0.1 read."""
        return self.code

    @property
    def faultString(self) -> str:  # noqa: N802
        """The message, under the name signal receivers written for 0.1 read."""
        return self.message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"<RPCError {self.code}: {self.message!r}>"
