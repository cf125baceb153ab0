"""flask-rpcenable: expose Python functions over XML-RPC and JSON-RPC from a Flask app."""

from __future__ import annotations

from xmlrpc.client import Binary, DateTime, Fault

from . import errors, signals
from .auth.signing import compute_signature, generate_auth_args
from .background import postpone
from .calls import CallContext, CallRecord
from .client.jsonrpc import JSONRPCPoint
from .client.point import XMLRPCPoint
from .errors import RPCError
from .extension import RPCEnable
from .state import RPCState

__version__ = "0.1.0"

#: The module of error codes under its first name (``flask_rpcenable.faults``).
faults = errors

__all__ = [
    "Binary",
    "CallContext",
    "CallRecord",
    "DateTime",
    "Fault",
    "JSONRPCPoint",
    "RPCEnable",
    "RPCError",
    "RPCState",
    "XMLRPCPoint",
    "compute_signature",
    "errors",
    "faults",
    "generate_auth_args",
    "postpone",
    "signals",
]
