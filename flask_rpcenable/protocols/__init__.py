"""The wire protocols the endpoint speaks.

Each is a :class:`~flask_rpcenable.protocols.base.ProtocolHandler` in a
module of its own; :data:`PROTOCOLS` lists them, and the view picks one per
request by its ``Content-Type``. Adding a protocol means adding its module
and listing its handler here (see ``docs/internals.rst``).
"""

from __future__ import annotations

from .base import ProtocolHandler
from .jsonrpc import JSONRPCHandler
from .xmlrpc import XMLRPCHandler

__all__ = ["PROTOCOLS", "JSONRPCHandler", "ProtocolHandler", "XMLRPCHandler"]

#: The handlers of every protocol, in the order the view tries them.
PROTOCOLS: tuple[type[ProtocolHandler], ...] = (XMLRPCHandler, JSONRPCHandler)
