"""Outgoing JSON-RPC 2.0 calls: :class:`JSONRPCPoint`, the sibling of ``XMLRPCPoint``.

::

    remote = JSONRPCPoint("https://example.org/rpc/v2/", auth=("alice", api_key))
    remote.math.add(1, 2)                 # parameters by position
    remote.math.add(a=1, b=2)             # or by name
    remote.notify("audit.ping", "hello")  # a notification: no answer
    with remote.batch() as batch:
        batch.math.add(1, 2)
        batch.math.add(3, 4)
    first, second = batch.results

It shares the XML-RPC point's HTTP transport (keep-alive connections,
connect and read timeouts, verified HTTPS, a response size cap), its
authentication (scheme v2: an ``Authorization`` header over the exact body;
scheme v1: the four parameters in front, or as members of named
parameters) and its call log (an ``OutgoingCall`` row per call when
``RPCENABLE_LOG_OUTGOING`` is on and an app context exists). Responses are
read with the same bounded JSON reader as the server's. An error answer
raises :class:`JSONRPCError`, an :class:`xmlrpc.client.Fault`, so code
written for either point catches both alike.
"""

from __future__ import annotations

import itertools
import os
import ssl
import time
import xmlrpc.client
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from ..auth.signing import generate_auth_args
from ..params import V1_AUTH_PARAMS
from ..protocols.jsonrpc_codec import encode_value, loads_bounded
from ..redact import REDACTED, redact_auth_params
from .base import PointBase, check_options, http_transport
from .errors import BadResponse
from .transport import DEFAULT_MAX_RESPONSE_SIZE

__all__ = ["Batch", "JSONRPCError", "JSONRPCPoint"]

_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
#: Introspection methods take no auth parameters on any server.
_NO_AUTH = frozenset(
    {"system.listMethods", "system.methodHelp", "system.methodSignature", "rpc.discover"}
)


class JSONRPCError(xmlrpc.client.Fault):
    """An error answer: ``code``, ``message`` and the optional ``data``.

    ``faultCode`` and ``faultString`` hold the code and the message too.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.data = data

    def __repr__(self) -> str:
        return f"<JSONRPCError {self.code}: {self.message!r}>"


class _Method:
    """A remote method name; calling it sends the call (``*args`` or ``**kwargs``)."""

    def __init__(self, point: Any, name: str) -> None:
        self._point = point
        self._name = name

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Method(self._point, f"{self._name}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._point.call(self._name, *args, **kwargs)


class JSONRPCPoint(PointBase):
    """A logged, authenticated JSON-RPC 2.0 client for one endpoint URL.

    Takes the options of :class:`~flask_rpcenable.client.point.XMLRPCPoint`
    that are not XML-RPC's own: ``headers``, ``context``, ``auth``,
    ``auth_scheme``, ``timeout``, ``connect_timeout``, ``verify``,
    ``max_response_size``, ``max_depth``, ``pool_size`` and ``log``, with
    the same meaning and defaults.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        context: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        auth_scheme: str = "v2",
        timeout: float | tuple[float | None, float | None] | None = 30,
        connect_timeout: float | None = None,
        verify: bool | str | os.PathLike[str] = True,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        max_depth: int = 64,
        pool_size: int = 4,
        log: bool = True,
    ) -> None:
        check_options("JSONRPCPoint", url, auth, auth_scheme, max_response_size)
        self._transport = http_transport(
            url,
            timeout=timeout,
            connect_timeout=connect_timeout,
            context=context,
            verify=verify,
            max_response_size=max_response_size,
            headers={**_HEADERS, **dict(_items(headers))},
            pool_size=pool_size,
        )
        self._url = self._transport.url
        self._sign_path = unquote(self._transport.path)
        self._auth = auth
        self._auth_scheme = auth_scheme
        self._max_depth = max_depth
        self._log = log
        self._ids = itertools.count(1)

    # -- the public face -----------------------------------------------------------

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Method(self, name)

    def __getitem__(self, name: str) -> _Method:
        """``remote["name"]``: a method whose name is no Python attribute."""
        return _Method(self, name)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` with parameters by position or by name (not both).

        :raises JSONRPCError: when the server answers with an error.
        :raises TransportError: when no readable answer came.
        """
        request, logged = self._request(method, args, kwargs, next(self._ids))
        return self._send(method, request, logged, notification=False)

    def notify(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Send ``method`` as a notification: the server runs it and answers nothing."""
        request, logged = self._request(method, args, kwargs, None)
        self._send(method, request, logged, notification=True)

    def batch(self) -> Batch:
        """Collect calls to send in one batch request (see :class:`Batch`)."""
        return Batch(self)

    # -- building and sending ----------------------------------------------------------

    def _request(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], request_id: int | None
    ) -> tuple[dict[str, Any], Any]:
        """The request object and its parameters as they may be logged."""
        if args and kwargs:
            raise TypeError("JSON-RPC takes parameters by position or by name, not both")
        v1 = self._auth is not None and self._auth_scheme == "v1" and method not in _NO_AUTH
        params: Any
        if kwargs:
            params = dict(kwargs)
            if v1:
                params.update(zip(V1_AUTH_PARAMS, generate_auth_args(*self._auth), strict=True))
            logged = {k: REDACTED if k in V1_AUTH_PARAMS and v1 else v for k, v in params.items()}
        else:
            auth_args = generate_auth_args(*self._auth) if v1 else ()  # type: ignore[misc]
            params = [*auth_args, *args]
            logged = list(redact_auth_params(params, known=v1))
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if request_id is not None:
            request["id"] = request_id
        return request, logged

    def _post(self, payload: Any) -> bytes:
        body = encode_value(payload).encode("ascii")
        return self._transport.post(body, self._auth_headers(body))

    def _send(
        self, method: str, request: dict[str, Any], logged: Any, *, notification: bool
    ) -> Any:
        start = time.perf_counter()
        try:
            data = self._post(request)
            result = None if notification else self._answer(data, request["id"])
        except JSONRPCError as error:
            self._record(method, logged, start, fault=error)
            raise
        except Exception as exc:
            self._record(method, logged, start, exception=exc)
            raise
        self._record(method, logged, start, response=result)
        return result

    def _parse(self, data: bytes) -> Any:
        if not data.strip():
            raise BadResponse(f"{self._url} sent no JSON-RPC response")
        try:
            return loads_bounded(data, max_depth=self._max_depth + 2)
        except ValueError as exc:
            raise BadResponse(f"{self._url} sent a response that is not JSON: {exc}") from None

    def _answer(self, data: bytes | Any, request_id: Any) -> Any:
        """The result of a response object (parsed from ``data`` when bytes)."""
        response = self._parse(data) if isinstance(data, bytes) else data
        if not isinstance(response, dict) or response.get("jsonrpc") != "2.0":
            raise BadResponse(f"{self._url} sent something that is not a JSON-RPC 2.0 response")
        error = response.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            if not isinstance(code, int) or not isinstance(message, str):
                raise BadResponse(f"{self._url} sent a malformed error object")
            raise JSONRPCError(code, message, error.get("data"))
        if "result" not in response:
            raise BadResponse(f"{self._url} sent a response with neither result nor error")
        if response.get("id") != request_id:
            raise BadResponse(f"{self._url} answered request {response.get('id')!r}, "
                              f"not {request_id!r}")
        return response["result"]


class Batch:
    """Calls collected for one batch request, sent when the ``with`` block ends.

    ``batch.name(...)`` adds a call, ``batch.notify(name, ...)`` a
    notification. Afterwards :attr:`results` holds each call's result in
    order, or the :class:`JSONRPCError` it failed with (not raised).
    """

    def __init__(self, point: JSONRPCPoint) -> None:
        self._point = point
        self._requests: list[tuple[str, dict[str, Any], Any]] = []
        self.results: list[Any] = []

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Method(self, name)

    def call(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Add a call of ``method``."""
        request_id = next(self._point._ids)
        self._requests.append((method, *self._point._request(method, args, kwargs, request_id)))

    def notify(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Add a notification of ``method``."""
        self._requests.append((method, *self._point._request(method, args, kwargs, None)))

    def __enter__(self) -> Batch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self._requests:
            self.send()

    def send(self) -> list[Any]:
        """Send the collected calls now; return (and keep in :attr:`results`) their results."""
        point = self._point
        requests = [request for _, request, _ in self._requests]
        logged = [{"method": m, "params": p} for m, _, p in self._requests]
        start = time.perf_counter()
        try:
            data = point._post(requests)
            expected = [r["id"] for r in requests if "id" in r]
            answers = point._parse(data) if expected else []
            if not isinstance(answers, list):  # the whole batch was refused
                point._answer(answers, None)
                raise BadResponse(f"{point.url} answered a batch with a single response")
            by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
            results = []
            for request_id in expected:
                if request_id not in by_id:
                    raise BadResponse(f"{point.url} sent no response for request {request_id}")
                try:
                    results.append(point._answer(by_id[request_id], request_id))
                except JSONRPCError as error:
                    results.append(error)
        except JSONRPCError as error:
            point._record("rpc.batch", logged, start, fault=error)
            raise
        except Exception as exc:
            point._record("rpc.batch", logged, start, exception=exc)
            raise
        shown = [
            {"code": r.code, "message": r.message} if isinstance(r, JSONRPCError) else r
            for r in results
        ]
        point._record("rpc.batch", logged, start, response=shown)
        self.results = results
        return results


def _items(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Iterable[Any]:
    if headers is None:
        return ()
    return headers.items() if isinstance(headers, Mapping) else headers
