"""The methods the fuzzers call: shared by ``test_fuzz.py`` and ``atheris_harness.py``."""

from __future__ import annotations

from typing import Any

from flask_rpcenable import RPCEnable


def fuzz_rpc() -> RPCEnable:
    """An RPCEnable with a string, an integer, an any-typed and a guarded method."""
    rpc = RPCEnable()

    @rpc.register
    def echo(var: str = "") -> str:
        return var

    @rpc.register
    def add(a: int, b: int) -> int:
        return a + b

    @rpc.register
    def take(value: Any = None) -> bool:
        return True

    @rpc.register
    @rpc.auth
    def guarded(user: Any) -> str:
        return "no"

    return rpc
