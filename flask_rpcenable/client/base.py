"""What the XML-RPC and the JSON-RPC points share.

Checking their options, building the pooled HTTP transport, signing a
request with scheme v2, writing the call log's row and closing the
connections work the same for both protocols; each point only builds and
reads its own bodies.
"""

from __future__ import annotations

import os
import ssl
import time
import traceback
import xmlrpc.client
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from ..auth.signing import sign_request_v2
from ..calllog.recorder import record_outgoing
from .transport import HTTPTransport, make_ssl_context

__all__ = ["AUTH_SCHEMES", "PointBase", "check_options", "fault_code", "http_transport"]

#: The authentication schemes a point can sign with.
AUTH_SCHEMES = ("v1", "v2")

Headers = Mapping[str, str] | Iterable[tuple[str, str]] | None


def check_options(
    point: str, url: Any, auth: Any, auth_scheme: Any, max_response_size: int
) -> None:
    """Refuse the options no point can work with, naming the ``point`` class.

    :raises TypeError: a URL that is no string, an ``auth`` that is no
        ``(username, api_key)`` pair of non-empty strings.
    :raises ValueError: an unknown scheme, a size cap below 1.
    """
    if not isinstance(url, str) or not url:
        raise TypeError(f"{point} needs the endpoint URL as a string")
    if auth is not None and (
        not isinstance(auth, tuple)
        or len(auth) != 2
        or not all(isinstance(part, str) and part for part in auth)
    ):
        raise TypeError("auth must be a (username, api_key) tuple of non-empty strings")
    if auth_scheme not in AUTH_SCHEMES:
        raise ValueError(f"auth_scheme must be 'v1' or 'v2', not {auth_scheme!r}")
    if max_response_size < 1:
        raise ValueError("max_response_size must be positive")


def http_transport(
    url: str,
    *,
    timeout: float | tuple[float | None, float | None] | None,
    connect_timeout: float | None,
    context: ssl.SSLContext | None,
    verify: bool | str | os.PathLike[str],
    max_response_size: int,
    headers: Headers,
    pool_size: int,
    verbose: bool = False,
) -> HTTPTransport:
    """The pooled HTTP transport for ``url``, with the points' timeout rules.

    ``timeout`` is one number for connecting and reading, or a ``(connect,
    read)`` pair; ``connect_timeout`` wins for connecting. An ``https`` URL
    without ``context`` gets one from ``verify``.
    """
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    if connect_timeout is not None:
        connect = connect_timeout
    if context is None and url.lower().startswith("https:"):
        context = make_ssl_context(verify)
    return HTTPTransport(
        url,
        connect_timeout=connect,
        read_timeout=read,
        ssl_context=context,
        max_response_size=max_response_size,
        headers=headers,
        pool_size=pool_size,
        verbose=verbose,
    )


def fault_code(fault: xmlrpc.client.Fault) -> int | None:
    """A fault's code as an integer for the log, or ``None`` when it is none."""
    code = fault.faultCode
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


class PointBase:
    """The parts of a point that do not depend on its protocol.

    A subclass sets ``_url`` (without credentials), ``_transport``,
    ``_sign_path``, ``_auth``, ``_auth_scheme`` and ``_log``.
    """

    _url: str
    _transport: Any
    _sign_path: str
    _auth: tuple[str, str] | None
    _auth_scheme: str
    _log: bool

    @property
    def url(self) -> str:
        """The endpoint URL, without credentials."""
        return self._url

    def close(self) -> None:
        """Close the idle connections (the point stays usable)."""
        self._transport.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} for {self._url}>"

    def _auth_headers(self, body: bytes) -> dict[str, str]:
        """The scheme-v2 ``Authorization`` header for ``body``, when the point signs with v2."""
        if self._auth is None or self._auth_scheme != "v2":
            return {}
        username, api_key = self._auth
        return {
            "Authorization": sign_request_v2(username, api_key, "POST", self._sign_path, body)
        }

    def _record(
        self,
        method: str,
        params: Any,
        start: float,
        *,
        response: Any = None,
        fault: xmlrpc.client.Fault | None = None,
        exception: BaseException | None = None,
    ) -> None:
        """Write the call log's row of one call that started at ``start`` (``perf_counter``)."""
        if not self._log:
            return
        record_outgoing(
            url=self._url,
            method=method,
            params=params,
            response=response,
            fault_code=fault_code(fault) if fault is not None else None,
            fault_string=str(fault.faultString) if fault is not None else None,
            exception=(
                "".join(traceback.format_exception(exception)) if exception is not None else None
            ),
            duration_ms=(time.perf_counter() - start) * 1000.0,
        )
