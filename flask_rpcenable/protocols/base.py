"""What a protocol handler is: bytes in, calls through the dispatcher, bytes out.

A handler owns its wire format and its conventions (XML-RPC's ``system.*``
methods and ``system.multicall``; JSON-RPC's batches and notifications). It
never runs a procedure itself: every call goes through
:meth:`Dispatcher.call <flask_rpcenable.dispatch.Dispatcher.call>`, which
authenticates, checks, times and records it, and raises
:class:`~flask_rpcenable.errors.RPCError` for the handler to encode.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from flask import Response

if TYPE_CHECKING:
    from ..calls import CallContext
    from ..errors import RPCError
    from ..state import RPCState

__all__ = ["ProtocolHandler"]


class ProtocolHandler(ABC):
    """One wire protocol on the endpoint of one :class:`~flask_rpcenable.state.RPCState`.

    The view picks the handler whose :attr:`media_types` holds the request's
    ``Content-Type``; a request without one goes to the handler whose
    :attr:`first_bytes` holds the first byte of its body (after white space).
    """

    #: The protocol's name, recorded on every call (``"xmlrpc"``).
    name: str
    #: The ``Content-Type`` media types it answers (without parameters).
    media_types: tuple[str, ...]
    #: The bytes a body of this protocol may start with (JSON-RPC: ``{`` and
    #: ``[``), for requests with no ``Content-Type``.
    first_bytes: bytes
    #: Whether dates and bytes come as text (ISO 8601, base64), for a wire
    #: with no types of its own for them (JSON); see :class:`~flask_rpcenable.CallContext`.
    text_scalars: bool = False

    def __init__(self, state: RPCState) -> None:
        self.state = state
        self.dispatcher = state.dispatcher
        self.settings = state.settings

    @abstractmethod
    def respond(self, ctx: CallContext, body: bytes) -> Response:
        """Decode ``body``, run its call(s) through the dispatcher, encode the answer."""

    @abstractmethod
    def error_response(self, error: RPCError) -> Response:
        """The answer to a request refused as a whole (say, by request-level auth)."""

    def refuse(self, ctx: CallContext, error: RPCError, body: bytes) -> Response:
        """Record and answer the request ``body``, refused as a whole (say, by request-level auth).

        It is recorded under the method ``body`` calls (:meth:`method_name`)
        and answered with :meth:`error_response`; a protocol whose answer
        repeats something of the request (JSON-RPC: its ids) does both from
        one parse.
        """
        self.dispatcher.record_rejected(ctx, error, method=self.method_name(body))
        return self.error_response(error)

    @abstractmethod
    def method_name(self, body: bytes) -> str:
        """The method ``body`` calls, for the record of a refused request; ``"-"`` if none."""
