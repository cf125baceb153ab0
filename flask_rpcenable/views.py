"""The HTTP side: transport checks, then a protocol handler.

The view checks the method, the version, the size and the content encoding,
verifies request-level authentication (scheme v2), and hands the body to the
handler of its ``Content-Type`` (see :mod:`flask_rpcenable.protocols`). Only
transport problems become HTTP errors (404 unknown version, 405 wrong method,
413 too large, 415 unsupported content type or encoding, 400 broken
compression); everything else is a protocol response with status 200.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from flask import (
    Blueprint,
    Request,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_content_length

from .calls import CallContext
from .compression import BadCompression, TooLarge, UnsupportedEncoding, read_capped
from .errors import APPLICATION_ERROR, APPLICATION_ERROR_MESSAGE, RPCError
from .protocols import PROTOCOLS, ProtocolHandler
from .protocols.introspection import auth_params
from .protocols.jsonrpc import SYSTEM_NAMES as JSONRPC_SYSTEM_NAMES
from .protocols.openrpc import example_params, openrpc_document

if TYPE_CHECKING:
    from .state import RPCState

def make_blueprint(state: RPCState) -> Blueprint:
    """The blueprint serving ``<prefix>/`` and ``<prefix>/v<N>/`` for one app."""
    blueprint = Blueprint(state.blueprint_name, __name__, template_folder="templates")
    settings = state.settings
    dispatcher = state.dispatcher
    handlers = [protocol(state) for protocol in PROTOCOLS]
    by_media_type = {media: handler for handler in handlers for media in handler.media_types}

    def endpoint(version: int | None) -> Response | str:
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        if not state.registry.has_version(version) or (
            # One URL per namespace: ``/v02/`` is not ``/v2/``.
            version is not None and not req.path.rstrip("/").endswith(f"/v{version}")
        ):
            abort(404)
        if req.method == "GET":
            if not settings.browsable:
                abort(405, valid_methods=["POST"])
            return _method_page(state, version)
        # Read from the environ: Request.content_length goes through two
        # header lookups, and the stream reads the length once more.
        environ = req.environ
        length = get_content_length(environ)
        ctx = CallContext(
            version=version,
            protocol=handlers[0].name,
            remote_addr=environ.get("REMOTE_ADDR"),  # what Request.remote_addr reads
            request_size=length,
            request=req,
        )
        try:
            body = _read_body(req, length, settings.max_request_size)
            handler = _pick(req, body, handlers, by_media_type)
        except HTTPException as exc:
            # Transport rejections are logged too, under method "-" with the
            # HTTP status as their code.
            refusal = RPCError(exc.code or 400, f"HTTP {exc.code}: {exc.name}")
            dispatcher.record_rejected(ctx, refusal)
            raise
        ctx.protocol = handler.name
        ctx.text_scalars = handler.text_scalars
        ctx.body = body
        ctx.request_size = len(body)
        try:
            # Request-level credentials come in an Authorization header.
            if dispatcher.authenticator is not None and "HTTP_AUTHORIZATION" in req.environ:
                ctx.verified = dispatcher.authenticator.verify_request(ctx)
        except RPCError as error:
            # A failed scheme-v2 signature is logged under the method called
            # (when the body names one), not under "-".
            return handler.refuse(ctx, error, body)
        except Exception as exc:  # a bug (say, in the authenticator): still no 500
            current_app.logger.error("checking an RPC request failed", exc_info=exc)
            error = RPCError(APPLICATION_ERROR, APPLICATION_ERROR_MESSAGE)
            dispatcher.record_rejected(ctx, error)
            return handler.error_response(error)
        return handler.respond(ctx, body)

    def openrpc(version: int | None) -> Response:
        """The namespace's OpenRPC document, as ``rpc.discover`` returns it."""
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        if not state.registry.has_version(version) or (
            version is not None and f"/v{version}/" not in req.path
        ):
            abort(404)
        url = url_for(f"{state.blueprint_name}.endpoint", version=version, _external=True)
        return jsonify(openrpc_document(state, version, url, JSONRPC_SYSTEM_NAMES))

    # strict_slashes=False: ``POST /rpc`` works too (no redirect, which
    # XML-RPC clients do not follow).
    options = {"methods": ["GET", "POST"], "strict_slashes": False}
    blueprint.add_url_rule("/", "endpoint", endpoint, defaults={"version": None}, **options)
    blueprint.add_url_rule("/v<int:version>/", "endpoint", endpoint, **options)
    blueprint.add_url_rule(
        "/openrpc.json", "openrpc", openrpc, defaults={"version": None}, methods=["GET"]
    )
    blueprint.add_url_rule("/v<int:version>/openrpc.json", "openrpc", openrpc, methods=["GET"])
    return blueprint


def _pick(
    req: Request,
    body: bytes,
    handlers: list[ProtocolHandler],
    by_media_type: dict[str, ProtocolHandler],
) -> ProtocolHandler:
    """The handler for the request's ``Content-Type``; HTTP 415 for any other type.

    A request without a ``Content-Type`` is read by the first byte of its
    body after white space (``<``: XML-RPC; ``{`` or ``[``: JSON-RPC).
    Refusing other types (``text/plain``, form posts) also ends blind
    cross-site calls, which browsers send without a preflight only with such
    types.
    """
    handler = by_media_type.get(req.environ.get("CONTENT_TYPE", ""))
    if handler is not None:  # the header is exactly a media type ("text/xml"): no parsing
        return handler
    media_type = req.mimetype
    if media_type:
        handler = by_media_type.get(media_type)
        if handler is None:
            abort(415)
        return handler
    first = body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    for handler in handlers:
        # first_bytes lists the bytes a body may start with (JSON-RPC: ``{[``).
        if first and first in handler.first_bytes:
            return handler
    abort(415)


def _read_body(req: Request, length: int | None, limit: int) -> bytes:
    """Read the request body, refusing more than ``limit`` bytes (HTTP 413).

    A gzip or deflate body is inflated with the same cap on its inflated
    size, so a compression bomb is refused without a memory spike; invalid or
    truncated compressed data, or data after its end, is HTTP 400. Any other
    content encoding is HTTP 415.
    """
    if length is not None and length > limit:
        abort(413)
    encoding = req.environ.get("HTTP_CONTENT_ENCODING", "identity")
    try:
        return read_capped(req.stream.read, encoding, limit, length)
    except TooLarge:
        abort(413)
    except UnsupportedEncoding:
        abort(415)
    except BadCompression as exc:
        abort(400, f"The compressed request body cannot be read: {exc}.")


def _method_page(state: RPCState, version: int | None) -> str:
    procedures = state.registry.methods(version)
    methods = []
    for procedure in procedures:
        prefix = auth_params(state.dispatcher, procedure)
        example = {
            "jsonrpc": "2.0",
            "method": procedure.name,
            "params": example_params(procedure),
            "id": 1,
        }
        methods.append(
            {
                "name": procedure.name,
                "signature": procedure.checker.display,
                "xmlrpc_signatures": procedure.checker.signatures(prefix),
                "doc": procedure.doc,
                "auth": procedure.requires_auth,
                "auth_params": ", ".join(prefix),
                "jsonrpc_example": json.dumps(example),
            }
        )
    return render_template(
        "rpcenable/methods.html",
        methods=methods,
        version=version,
        versions=state.registry.versions(),
        endpoint_url=request.base_url,
        app_name=current_app.name,
        blueprint=state.blueprint_name,
        openrpc_url=url_for(f"{state.blueprint_name}.openrpc", version=version),
    )
