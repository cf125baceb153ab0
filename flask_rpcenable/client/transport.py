"""The HTTP transport of :class:`~flask_rpcenable.client.point.XMLRPCPoint`.

One :class:`HTTPTransport` serves one URL. It keeps a small pool of
persistent (keep-alive) :mod:`http.client` connections, so consecutive calls
reuse one TCP (and TLS) connection, and each thread takes its own connection
from the pool, so one point may be shared by threads. It separates the
connect timeout from the read timeout, verifies HTTPS certificates by
default, accepts gzip and deflate responses and caps the size of a response
after decompression. Failures become the exceptions of
:mod:`flask_rpcenable.client.errors`.

:class:`ForeignTransport` instead hands each request to a transport object
given by the user (``XMLRPCPoint(url, transport=...)``), the way
:class:`xmlrpc.client.ServerProxy` does.
"""

from __future__ import annotations

import base64
import http.client
import importlib.metadata
import os
import ssl
import sys
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from ..compression import BadCompression, TooLarge, UnsupportedEncoding, read_capped
from ..redact import strip_url_credentials
from .errors import (
    BadResponse,
    ConnectError,
    ConnectTimeout,
    HTTPStatusError,
    ReadTimeout,
    ResponseTooLarge,
    TLSError,
    TransportError,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_PATH",
    "ForeignTransport",
    "HTTPTransport",
    "ServerProxyTransport",
    "make_ssl_context",
]

#: The largest response accepted by default, after decompression: 50 MiB.
DEFAULT_MAX_RESPONSE_SIZE = 50 * 1024 * 1024
#: The path posted to when the URL has none, as :class:`xmlrpc.client.ServerProxy` does.
DEFAULT_PATH = "/RPC2"
_CHUNK = 64 * 1024
#: Errors meaning a kept-alive connection was closed by the server while idle.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
          ConnectionAbortedError)


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("flask-rpcenable")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        version = "unknown"
    # "Python-xmlrpc/" tells servers (this project's included) that the
    # client reads <i8> and <nil/>, which the standard unmarshaller does.
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return f"Python-xmlrpc/{python} flask-rpcenable/{version}"


def make_ssl_context(verify: bool | str | os.PathLike[str] = True) -> ssl.SSLContext:
    """The TLS context for ``verify``.

    :param verify: ``True`` to verify against the system's CA certificates,
        a path to a CA bundle file (or a directory of hashed certificates)
        to verify against it, ``False`` to skip verification (only for
        testing: anyone on the path can then read and change the calls).
    """
    if verify is True:
        return ssl.create_default_context()
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    path = os.fspath(verify)
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


def _close_all(connections: list[http.client.HTTPConnection]) -> None:
    while connections:
        connections.pop().close()


class HTTPTransport:
    """POSTs request bodies to one URL over pooled keep-alive connections.

    :param url: an ``http://`` or ``https://`` URL; credentials in it
        (``https://user:password@host/``) are sent as HTTP Basic auth. A URL
        without a path posts to ``/RPC2``, as ``ServerProxy`` does.
    :param connect_timeout: seconds to wait for the connection (and the TLS
        handshake); ``None`` waits as long as the system does.
    :param read_timeout: seconds to wait for the server, each time it is
        waited on (sending, then each read); ``None`` waits forever.
    :param ssl_context: the TLS context for ``https://`` URLs.
    :param max_response_size: the largest response body accepted, after
        decompression, in bytes.
    :param headers: extra HTTP headers sent with every request.
    :param pool_size: how many idle connections are kept for reuse.
    :param verbose: print each request and answer on standard output, as
        ``ServerProxy(..., verbose=True)`` does (headers included, so an
        ``Authorization`` header is printed too).
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float | None = 30,
        read_timeout: float | None = 30,
        ssl_context: ssl.SSLContext | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        pool_size: int = 4,
        verbose: bool = False,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme {parts.scheme!r}: use http:// or https://")
        if not parts.hostname:
            raise ValueError(f"the URL {strip_url_credentials(url)!r} has no host")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.path = parts.path or DEFAULT_PATH
        self.handler = self.path + (f"?{parts.query}" if parts.query else "")
        #: The URL without credentials and with secret query values replaced
        #: by ``***``, for messages and logs.
        self.url = strip_url_credentials(url)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_response_size = max_response_size
        self.pool_size = pool_size
        self.verbose = verbose
        if self.https:
            self.ssl_context = ssl_context or make_ssl_context(True)
        self.headers: dict[str, str] = {
            "User-Agent": _user_agent(),
            "Content-Type": "text/xml; charset=utf-8",
            "Accept-Encoding": "gzip, deflate",
        }
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
            self.headers["Authorization"] = f"Basic {token}"
        if headers:
            items = headers.items() if isinstance(headers, Mapping) else headers
            self.headers.update(dict(items))
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []
        self._pid = os.getpid()
        self._finalizer = weakref.finalize(self, _close_all, self._idle)

    # -- the pool ------------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        where = f"{self.host}:{self.port}"
        conn: http.client.HTTPConnection
        if self.https:
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.connect_timeout, context=self.ssl_context
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)
        conn.set_debuglevel(1 if self.verbose else 0)
        try:
            conn.connect()
        except TimeoutError:
            conn.close()
            raise ConnectTimeout(
                f"could not connect to {where} within {self.connect_timeout} s"
            ) from None
        except ssl.SSLError as exc:
            conn.close()
            raise TLSError(f"TLS with {where} failed: {exc}") from exc
        except OSError as exc:
            conn.close()
            reason = exc.strerror or str(exc)
            if exc.errno is not None:
                raise ConnectError(exc.errno, f"could not connect to {where}: {reason}") from exc
            raise ConnectError(f"could not connect to {where}: {reason}") from exc
        assert conn.sock is not None
        conn.sock.settimeout(self.read_timeout)
        return conn

    def _acquire(self) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection (reused=True) or a new one."""
        with self._lock:
            if self._pid != os.getpid():  # forked: the sockets belong to the parent
                self._idle.clear()
                self._pid = os.getpid()
            if self._idle:
                return self._idle.pop(), True
        return self._connect(), False

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.pool_size and self._pid == os.getpid():
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections. The transport stays usable."""
        with self._lock:
            _close_all(self._idle)

    # -- one request ---------------------------------------------------------

    def post(self, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """Send ``body`` and return the (decompressed) response body.

        When a kept-alive connection turns out to be closed by the server
        (while idle), the idle connections are dropped and the request is
        sent once more on a new connection.

        :raises TransportError: (a subclass) when no readable answer came.
        """
        all_headers = dict(self.headers)
        if headers:
            all_headers.update(headers)
        while True:
            conn, reused = self._acquire()
            try:
                response = self._send(conn, body, all_headers)
            except _STALE:
                conn.close()
                if reused:
                    # The server closed it while idle; the other idle ones
                    # are likely closed too: retry once, on a new connection.
                    self.close()
                    continue
                raise TransportError(
                    f"{self.url} closed the connection without answering"
                ) from None
            except BaseException:
                conn.close()
                raise
            break
        try:
            data = self._read(response)
        except BaseException:
            conn.close()
            raise
        if response.isclosed() and not response.will_close:
            self._release(conn)
        else:
            conn.close()
        return data

    def _send(
        self, conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        try:
            conn.request("POST", self.handler, body=body, headers=headers)
            return conn.getresponse()
        except _STALE:
            raise
        except TimeoutError:
            raise ReadTimeout(
                f"{self.url} did not answer within {self.read_timeout} s"
            ) from None
        except http.client.HTTPException as exc:
            raise BadResponse(f"{self.url} sent an invalid HTTP response: {exc!r}") from None
        except OSError as exc:
            raise TransportError(exc.errno, f"{self.url}: {exc.strerror or exc}") from exc

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        if response.status == 204:  # a JSON-RPC notification's answer: no body
            response.read()
            return b""
        if response.status != 200:
            raise HTTPStatusError(self.url, response.status, response.reason, response.msg)
        limit = self.max_response_size
        length = response.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            raise ResponseTooLarge(
                f"{self.url} sent {int(length)} bytes; the limit is {limit} (max_response_size)"
            )
        encoding = response.getheader("Content-Encoding") or "identity"
        try:
            data = read_capped(response.read, encoding, limit, _length(length))
        except TooLarge:
            raise ResponseTooLarge(
                f"the response of {self.url} is larger than {limit} bytes (max_response_size)"
            ) from None
        except UnsupportedEncoding:
            raise BadResponse(
                f"{self.url} sent an unsupported Content-Encoding: {encoding.strip()!r}"
            ) from None
        except BadCompression as exc:
            kind = encoding.strip().lower()
            raise BadResponse(f"{self.url} sent invalid {kind} data: {exc}") from None
        except TimeoutError:
            raise ReadTimeout(
                f"{self.url} stopped sending its answer for {self.read_timeout} s"
            ) from None
        except http.client.HTTPException as exc:
            raise BadResponse(f"{self.url} sent an invalid HTTP response: {exc!r}") from None
        except TransportError:
            raise
        except OSError as exc:
            raise TransportError(exc.errno, f"{self.url}: {exc.strerror or exc}") from exc
        if self.verbose:
            print("body:", repr(data))
        return data


def _length(header: str | None) -> int | None:
    """The Content-Length header as a number, if it is one."""
    return int(header) if header is not None and header.strip().isdigit() else None


class ServerProxyTransport(Protocol):
    """What ``transport=`` must provide: the method
    :class:`xmlrpc.client.ServerProxy` calls on its transport, which sends a
    request body and returns the parsed response values as a tuple
    (:class:`xmlrpc.client.Transport` and its subclasses have it)."""

    def request(
        self, host: str, handler: str, request_body: bytes, verbose: bool = ...
    ) -> Any: ...


#: Options of :class:`HTTPTransport` and of the response parser, with their
#: defaults: they cannot apply to a user-supplied transport.
OWN_TRANSPORT_DEFAULTS: dict[str, Any] = {
    "timeout": 30,
    "connect_timeout": None,
    "verify": True,
    "max_response_size": DEFAULT_MAX_RESPONSE_SIZE,
    "max_depth": 64,
    "pool_size": 4,
}


class ForeignTransport:
    """Sends requests through a user-supplied, ServerProxy-style transport.

    It calls ``transport.request(host, handler, body, verbose=verbose)``
    exactly as :class:`xmlrpc.client.ServerProxy` does: ``host`` keeps the
    credentials of the URL (the standard transports turn them into HTTP
    Basic auth), ``handler`` is the path and query (``/RPC2`` when the URL
    has no path). Connections, timeouts, TLS, parsing and errors are the
    transport's own.

    :param url: an ``http://`` or ``https://`` URL.
    :param transport: the object to send through.
    :param verbose: passed on to each ``request``.
    :param options: this point's options of :data:`OWN_TRANSPORT_DEFAULTS`;
        any that differs from its default is refused, as it would be ignored.
    :raises TypeError: for a transport without ``request`` or such an option.
    """

    def __init__(
        self, url: str, transport: ServerProxyTransport, *, verbose: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(getattr(transport, "request", None)):
            raise TypeError("transport must have a request(host, handler, body, verbose) method")
        given = sorted(
            name for name, value in (options or {}).items()
            if value != OWN_TRANSPORT_DEFAULTS[name]
        )
        if given:
            raise TypeError(
                f"{', '.join(given)} set(s) flask-rpcenable's own HTTP transport and cannot "
                "apply to transport=: configure the transport you pass instead"
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme {parts.scheme!r}: use http:// or https://")
        if not parts.hostname:
            raise ValueError(f"the URL {strip_url_credentials(url)!r} has no host")
        self.transport = transport
        self.verbose = verbose
        self.host = parts.netloc
        self.path = parts.path or DEFAULT_PATH
        self.handler = self.path + (f"?{parts.query}" if parts.query else "")
        #: The URL without credentials, for messages and logs.
        self.url = strip_url_credentials(url)

    def request(self, body: bytes) -> Any:
        """Send ``body``; the result as ``ServerProxy`` gives it (a single
        value, or a tuple when the server sent several)."""
        response = self.transport.request(self.host, self.handler, body, verbose=self.verbose)
        if isinstance(response, (tuple, list)) and len(response) == 1:
            return response[0]
        return response

    def close(self) -> None:
        """Close the transport's connection, as ``ServerProxy("close")()`` does."""
        close = getattr(self.transport, "close", None)
        if callable(close):
            close()
