"""What one call is, apart from any wire format: its request, its outcome, its user.

A protocol handler builds a :class:`CallContext` per HTTP request and hands
it, with each call's method name and :data:`Params`, to the dispatcher
(:mod:`flask_rpcenable.dispatch`), which produces one :class:`CallRecord`
per call for the call log and the signals. An authenticator answers with an
:class:`AuthResult`.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Request

__all__ = ["AuthResult", "CallContext", "CallRecord", "Params"]

#: Parameters as a protocol hands them over: by position or by name.
Params = list[Any] | dict[str, Any]


@dataclass
class AuthResult:
    """What an authenticator hands back for a verified call."""

    user: Any
    username: str
    #: The parameters left for the function once the auth ones are taken off.
    params: Params


@dataclass
class CallContext:
    """What the transport knows about the request a call came in.

    The HTTP method, the path and the headers are read from ``request`` only
    when something asks for them (a scheme-v2 signature, the User-Agent
    rule of ``<i8>``): most calls never do, and Werkzeug builds each on
    first use.
    """

    version: int | None
    protocol: str = "xmlrpc"
    remote_addr: str | None = None
    request_size: int | None = None
    #: The raw (decompressed) body, for signatures that cover it.
    body: bytes = b""
    #: Set when the request was authenticated as a whole, before parsing
    #: (scheme v2: a signed ``Authorization`` header).
    verified: AuthResult | None = None
    #: The HTTP request; ``None`` for a call made without one.
    request: Request | None = None
    #: Whether the wire sends dates and bytes as text (JSON: ISO 8601 and
    #: base64 strings), which parameters annotated so are converted from.
    text_scalars: bool = False

    @property
    def http_method(self) -> str:
        """The request's HTTP method (``POST`` without a request)."""
        return "POST" if self.request is None else self.request.method

    @property
    def path(self) -> str:
        """The path the request was sent to, with the app's script root (``/`` without one)."""
        request = self.request
        return "/" if request is None else request.script_root + request.path

    @property
    def headers(self) -> Mapping[str, str]:
        """The request's headers (none without a request)."""
        return {} if self.request is None else self.request.headers

    @property
    def user_agent(self) -> str:
        """The ``User-Agent`` header, or ``""``: one lookup in the WSGI environ."""
        if self.request is None:
            return ""
        return self.request.environ.get("HTTP_USER_AGENT", "")


@dataclass
class CallRecord:
    """Everything known about one finished call, for logs and signals."""

    method: str
    version: int | None
    protocol: str
    params: Params
    started_at: datetime.datetime
    remote_addr: str | None = None
    request_size: int | None = None
    username: str | None = None
    result: Any = None
    fault_code: int | None = None
    fault_string: str | None = None
    traceback: str | None = None
    duration_ms: float = 0.0
    #: Position inside a ``system.multicall``; ``None`` for a top-level call.
    multicall_index: int | None = None

    @property
    def ok(self) -> bool:
        return self.fault_code is None
