"""Exceptions raised by :class:`~flask_rpcenable.client.point.XMLRPCPoint`.

A call ends in one of three ways: a result, an
:class:`xmlrpc.client.Fault` (the server answered with a fault), or a
:class:`TransportError` (the answer never came or could not be read).
Every transport error is an :class:`OSError`, so code written for
:class:`xmlrpc.client.ServerProxy` that catches ``OSError`` keeps working;
the classes below say more precisely what went wrong::

    OSError
     +-- TransportError
          +-- ConnectError (also ConnectionError)
          |    +-- ConnectTimeout (also TimeoutError)
          |    +-- TLSError
          +-- ReadTimeout (also TimeoutError)
          +-- HTTPStatusError (also xmlrpc.client.ProtocolError)
          +-- BadResponse
               +-- ResponseTooLarge
"""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Mapping
from typing import Any

__all__ = [
    "BadResponse",
    "ConnectError",
    "ConnectTimeout",
    "HTTPStatusError",
    "ReadTimeout",
    "ResponseTooLarge",
    "TLSError",
    "TransportError",
]


class TransportError(OSError):
    """The call did not get a readable XML-RPC answer.

    Whether the server ran the method is unknown unless the subclass says
    otherwise (a :class:`ConnectError` means the request was never sent).
    """


class ConnectError(TransportError, ConnectionError):
    """No connection could be made (refused, unreachable, name not found).

    The request was not sent. ``errno`` is the one of the underlying error
    when there was one.
    """


class ConnectTimeout(ConnectError, TimeoutError):
    """The connection (including the TLS handshake) took longer than the
    connect timeout. The request was not sent."""


class TLSError(ConnectError):
    """The TLS handshake failed, most often because the server's certificate
    could not be verified. The request was not sent."""


class ReadTimeout(TransportError, TimeoutError):
    """The server accepted the request but sent nothing for longer than the
    read timeout. The method may or may not have run."""


class HTTPStatusError(TransportError, xmlrpc.client.ProtocolError):
    """The server answered with an HTTP status other than 200.

    Also an :class:`xmlrpc.client.ProtocolError`, with the same attributes
    (``url``, ``errcode``, ``errmsg``, ``headers``), so code written for
    :class:`xmlrpc.client.ServerProxy` keeps working.
    """

    def __init__(self, url: str, errcode: int, errmsg: str, headers: Mapping[str, str]) -> None:
        OSError.__init__(self, f"{url} answered HTTP {errcode} {errmsg}".rstrip())
        self.url = url
        self.errcode = errcode
        self.errmsg = errmsg
        self.headers: Any = headers

    def __repr__(self) -> str:
        return f"HTTPStatusError({self.url!r}, {self.errcode!r}, {self.errmsg!r})"

    def __str__(self) -> str:
        return OSError.__str__(self)


class BadResponse(TransportError):
    """The answer was not a well-formed, safe XML-RPC response: not XML, a
    document type declaration, an unsupported encoding or compression, a
    wrong root element, values nested too deeply."""


class ResponseTooLarge(BadResponse):
    """The answer (after decompression) is larger than ``max_response_size``."""
