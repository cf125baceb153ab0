"""flask-rpcenable: expose Python functions over XML-RPC from a Flask app."""

from __future__ import annotations

from xmlrpc.client import Binary, DateTime, Fault

from . import faults, signals
from .auth.signing import compute_signature, generate_auth_args
from .background import postpone
from .client.point import XMLRPCPoint
from .dispatch import CallContext, CallRecord
from .extension import RPCEnable
from .state import RPCState

__version__ = "0.1.0"

__all__ = [
    "Binary",
    "CallContext",
    "CallRecord",
    "DateTime",
    "Fault",
    "RPCEnable",
    "RPCState",
    "XMLRPCPoint",
    "compute_signature",
    "faults",
    "generate_auth_args",
    "postpone",
    "signals",
]
