"""Outgoing calls: :class:`XMLRPCPoint`, a logged, authenticated XML-RPC client.

It is used like :class:`xmlrpc.client.ServerProxy`::

    remote = XMLRPCPoint("https://example.org/rpc/v2/", auth=("alice", api_key))
    remote.math.add(1, 2)
    remote.system.listMethods()
    with remote.multicall() as mc:
        mc.math.add(1, 2)
        mc.math.add(3, 4)
    first, second = mc.results

and adds: signing with the API key (scheme v2 in an ``Authorization``
header, or django-rpcenable's scheme v1 as four leading parameters), a call
log (an :class:`OutgoingCall` row per call when ``RPCENABLE_LOG_OUTGOING``
is on and an app context exists), keep-alive connections, separate connect
and read timeouts, verified HTTPS, a response size cap and a parser that
refuses DTDs. It takes :class:`~xmlrpc.client.ServerProxy`'s constructor
arguments too (``transport=``, ``verbose``, the positional order); what
differs is listed in ``docs/client.rst``.
"""

from __future__ import annotations

import os
import ssl
import time
import xmlrpc.client
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from ..auth.signing import generate_auth_args
from ..redact import REDACTED, looks_like_auth_args, redact_auth_params
from .base import PointBase, check_options, http_transport
from .codec import (
    MultiCall,
    MultiCallResults,
    _Method,
    decode_response,
    encode_call,
)
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
from .transport import DEFAULT_MAX_RESPONSE_SIZE, ForeignTransport, ServerProxyTransport

__all__ = [
    "BadResponse",
    "ConnectError",
    "ConnectTimeout",
    "HTTPStatusError",
    "MultiCall",
    "MultiCallResults",
    "REDACTED",
    "ReadTimeout",
    "ResponseTooLarge",
    "TLSError",
    "TransportError",
    "XMLRPCPoint",
    "looks_like_auth_args",
    "redact_auth_params",
]

#: Introspection methods: never given auth parameters (v1) or the param hook,
#: since they take none on every server. A multicall's sub-calls get them.
INTROSPECTION = frozenset(
    {
        "system.listMethods",
        "system.methodHelp",
        "system.methodSignature",
        "system.multicall",
        "system.getCapabilities",
    }
)


class XMLRPCPoint(PointBase):
    """A logged, authenticated XML-RPC client for one endpoint URL.

    Attribute access names remote methods (``remote.math.add(1, 2)``), as
    with :class:`xmlrpc.client.ServerProxy`; results, faults
    (:class:`xmlrpc.client.Fault`) and value types are the same. Transport
    failures raise :class:`~flask_rpcenable.client.errors.TransportError`
    subclasses, all of them :class:`OSError`.

    The constructor also takes :class:`~xmlrpc.client.ServerProxy`'s
    arguments, in its positional order and with its meaning: ``(uri,
    transport, encoding, verbose, allow_none, use_datetime,
    use_builtin_types, *, headers, context)``. ``allow_none`` defaults the
    other way (``True``); ``docs/client.rst`` lists every difference.

    :param url: the endpoint, ``http://`` or ``https://`` (``uri=`` is
        accepted too, ServerProxy's name); credentials in it are sent as
        HTTP Basic auth and left out of the log. Without a path, calls go
        to ``/RPC2``, as with ServerProxy.
    :param transport: a ServerProxy-style transport (such as an
        :class:`xmlrpc.client.Transport`) to send every call through instead
        of the point's own connections. It then does the HTTP, the TLS and
        the parsing: ``timeout``, ``connect_timeout``, ``verify``,
        ``max_response_size``, ``max_depth`` and ``pool_size`` are refused
        with :class:`TypeError`, ``headers``, ``context``, ``use_datetime``
        and ``use_builtin_types`` are ignored (as ServerProxy ignores them),
        and ``auth_scheme="v2"`` is refused (it needs a header per request).
        Marshalling, ``param_hook``, auth v1 and the call log still apply.
    :param encoding: the request encoding (UTF-8 by default).
    :param verbose: print each request and answer on standard output.
    :param allow_none: send ``None`` as ``<nil/>`` (default ``True``);
        ``False`` raises :class:`TypeError` for ``None`` before sending.
    :param use_datetime: return ``datetime`` for dates only.
    :param use_builtin_types: return ``bytes`` and ``datetime`` instead of
        :class:`xmlrpc.client.Binary` and :class:`xmlrpc.client.DateTime`.
    :param headers: extra HTTP headers for every request.
    :param context: an :class:`ssl.SSLContext` to use instead of ``verify``.
    :param auth: ``(username, api_key)`` of an API user on the remote
        server: every call is signed (see ``auth_scheme``).
    :param auth_scheme: ``"v2"`` (default): an ``Authorization`` header
        signing the HTTP method, path and exact body; ``"v1"``: the
        django-rpcenable scheme, four parameters (nonce, timestamp,
        username, signature) put in front of each call's parameters.
    :param param_hook: a function given each call's parameter tuple and
        returning the tuple to send, as in django-rpcenable. Runs before
        ``auth`` v1 adds its parameters.
    :param timeout: seconds to wait for the server each time it is waited
        on (the read timeout), or a ``(connect, read)`` pair; ``None`` waits
        forever.
    :param connect_timeout: seconds to wait for the connection and TLS
        handshake; defaults to the read timeout.
    :param verify: ``True`` verifies HTTPS certificates against the
        system's CAs, a path verifies against that CA file or directory,
        ``False`` does not verify (testing only).
    :param max_response_size: the largest response accepted, in bytes after
        decompression (50 MiB by default).
    :param max_depth: how deeply arrays and structs in a response may nest.
    :param pool_size: idle keep-alive connections kept for reuse.
    :param log: ``False`` keeps this point's calls out of the call log.
    """

    def __init__(
        self,
        url: str = "",
        transport: ServerProxyTransport | None = None,
        encoding: str | None = None,
        verbose: bool = False,
        allow_none: bool = True,
        use_datetime: bool = False,
        use_builtin_types: bool = False,
        *,
        uri: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        context: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        auth_scheme: str = "v2",
        param_hook: Callable[[tuple[Any, ...]], Sequence[Any]] | None = None,
        timeout: float | tuple[float | None, float | None] | None = 30,
        connect_timeout: float | None = None,
        verify: bool | str | os.PathLike[str] = True,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        max_depth: int = 64,
        pool_size: int = 4,
        log: bool = True,
    ) -> None:
        if uri is not None:
            if url:
                raise TypeError("give the URL once, as url or as uri")
            url = uri
        check_options("XMLRPCPoint", url, auth, auth_scheme, max_response_size)
        if param_hook is not None and not callable(param_hook):
            raise TypeError("param_hook must be callable")
        self._foreign: ForeignTransport | None = None
        self._transport: Any
        if transport is not None:
            if auth is not None and auth_scheme == "v2":
                raise ValueError(
                    "auth_scheme='v2' signs a header that a user-supplied transport cannot "
                    "be given per request: use auth_scheme='v1' or leave transport out"
                )
            options = {
                "timeout": timeout, "connect_timeout": connect_timeout, "verify": verify,
                "max_response_size": max_response_size, "max_depth": max_depth,
                "pool_size": pool_size,
            }
            self._foreign = ForeignTransport(url, transport, verbose=verbose, options=options)
            self._transport = transport
            self._url, path = self._foreign.url, self._foreign.path
        else:
            self._transport = http_transport(
                url,
                timeout=timeout,
                connect_timeout=connect_timeout,
                context=context,
                verify=verify,
                max_response_size=max_response_size,
                headers=headers,
                pool_size=pool_size,
                verbose=verbose,
            )
            self._url, path = self._transport.url, self._transport.path
        self._sign_path = unquote(path)
        self._auth = auth
        self._auth_scheme = auth_scheme
        self._param_hook = param_hook
        self._allow_none = allow_none
        self._encoding = encoding
        self._use_builtin_types = use_builtin_types
        self._use_datetime = use_datetime
        self._max_depth = max_depth
        self._log = log

    # -- ServerProxy behaviour -------------------------------------------------

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Method(self._call, name)

    def __getitem__(self, name: str) -> _Method:
        """``remote["name"]``: a remote method whose name is no Python attribute
        (``"class"``, ``"get-item"``) or is one of the point's own members
        (``"close"``, ``"multicall"``, ``"url"``)."""
        return _Method(self._call, name)

    def __call__(self, attr: str) -> Any:
        """``remote("close")()`` and ``remote("transport")`` (the transport
        given as ``transport=``, or the point's own), as ServerProxy has."""
        if attr == "close":
            return self.close
        if attr == "transport":
            return self._transport
        raise AttributeError(f"Attribute {attr!r} not found")

    def close(self) -> None:
        """Close the idle connections (the point stays usable); with
        ``transport=``, call that transport's ``close()``."""
        (self._foreign or self._transport).close()

    def multicall(self) -> MultiCall:
        """Collect calls to send in one ``system.multicall`` request."""
        return MultiCall(self)

    # -- a call ------------------------------------------------------------------

    def _prepare(self, method: str, params: tuple[Any, ...]) -> tuple[tuple[Any, ...], bool]:
        """The parameters to send, and whether the point put auth arguments in."""
        if method in INTROSPECTION:
            return params, False
        if self._param_hook is not None:
            params = tuple(self._param_hook(params))
        if self._auth is not None and self._auth_scheme == "v1":
            return generate_auth_args(*self._auth) + params, True
        return params, False

    def _call(self, method: str, params: tuple[Any, ...]) -> Any:
        sent, known = self._prepare(method, params)
        logged = list(redact_auth_params(sent, known=known))
        return self._send(method, sent, logged)

    def _send(self, method: str, params: Sequence[Any], logged: list[Any]) -> Any:
        """Marshal, sign, send, parse and log one request."""
        start = time.perf_counter()
        try:
            body = encode_call(
                method, params, encoding=self._encoding, allow_none=self._allow_none
            )
            headers = self._auth_headers(body)
            if self._encoding and self._encoding.lower().replace("_", "-") != "utf-8":
                headers["Content-Type"] = f"text/xml; charset={self._encoding}"
            if self._foreign is not None:
                result = self._foreign.request(body)
            else:
                result = decode_response(
                    self._transport.post(body, headers),
                    use_builtin_types=self._use_builtin_types,
                    use_datetime=self._use_datetime,
                    max_depth=self._max_depth,
                )
        except xmlrpc.client.Fault as fault:
            self._record(method, logged, start, fault=fault)
            raise
        except Exception as exc:
            self._record(method, logged, start, exception=exc)
            raise
        self._record(method, logged, start, response=result)
        return result

    def _multicall(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        entries, logged = [], []
        for name, params in calls:
            sent, known = self._prepare(name, params)
            entries.append({"methodName": name, "params": list(sent)})
            logged.append(
                {"methodName": name, "params": list(redact_auth_params(sent, known=known))}
            )
        result = self._send("system.multicall", (entries,), [logged])
        if not isinstance(result, list) or len(result) != len(entries):
            raise BadResponse(
                f"system.multicall of {self._url} answered with {type(result).__name__}, "
                f"not a list of {len(entries)} results"
            )
        return result


