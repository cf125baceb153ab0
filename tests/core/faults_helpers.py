"""The app of the fault tests (``test_fault_codes``, ``test_multicall``; no tests here).

``make_rpc()`` registers methods that answer, refuse, crash or return what XML-RPC cannot
encode; ``serving()`` serves them; ``fault_of()`` makes a call that must fail.
"""

from __future__ import annotations

import contextlib
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from core_helpers import new_app, proxy, running

from flask_rpcenable import Fault, RPCEnable
from flask_rpcenable.calls import CallRecord

SECRET = "s3cr3t-token-in-the-exception"


class CustomError(Exception):
    pass


def make_rpc() -> RPCEnable:
    rpc = RPCEnable()

    @rpc.register
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @rpc.register
    def greet(name: str, punctuation: str = "!") -> str:
        return f"Hello {name}{punctuation}"

    @rpc.register
    def scale(x: float, factor: float = 2.0) -> float:
        return x * factor

    @rpc.register
    def crash() -> None:
        raise CustomError(f"database password is {SECRET}")

    @rpc.register
    def refuse(code: int = 42) -> None:
        raise Fault(code, "You shall not pass")

    @rpc.register
    def odd_fault() -> None:
        raise Fault("not-an-int", "odd code")  # type: ignore[arg-type]

    @rpc.register
    def unencodable(kind: str) -> Any:
        return {
            "object": object(),
            "set": {1, 2},
            "huge": 2**70,
            "key": {1: "int key"},
            "control": "bell \x07",
            "control-key": {"bell \x07": 1},
            "surrogate": "\ud800",
        }[kind]

    @rpc.register(name="math.add", version=2)
    def add_v2(a: int, b: int) -> int:
        return a + b

    return rpc


@contextlib.contextmanager
def serving(path: Path) -> Iterator[tuple[str, list[CallRecord]]]:
    """Serve ``make_rpc()`` (at most 5 calls per multicall); yields the URL and the records."""
    app = new_app(path, RPCENABLE_MAX_MULTICALL=5)
    rpc = make_rpc()
    rpc.init_app(app)
    records: list[CallRecord] = []
    rpc.state(app).dispatcher.recorders.append(records.append)
    with running(app) as base:
        yield base + "/rpc/", records


def fault_of(url: str, method: str, *params: Any) -> xmlrpc.client.Fault:
    with proxy(url) as server, pytest.raises(xmlrpc.client.Fault) as excinfo:
        getattr(server, method)(*params)
    # the server still answers the next call
    with proxy(url) as server:
        assert server.add(1, 2) == 3
    return excinfo.value
