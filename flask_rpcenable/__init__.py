"""flask-rpcenable: expose Python functions over XML-RPC from a Flask app."""

from __future__ import annotations

from xmlrpc.client import Binary, DateTime, Fault

from . import faults, signals
from .dispatch import CallContext, CallRecord
from .extension import RPCEnable, RPCState

__version__ = "0.1.0"

__all__ = [
    "Binary",
    "CallContext",
    "CallRecord",
    "DateTime",
    "Fault",
    "RPCEnable",
    "RPCState",
    "faults",
    "signals",
]
