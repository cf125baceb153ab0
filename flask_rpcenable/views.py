"""The HTTP side: transport checks, then the codec, then the dispatcher.

Only transport problems become HTTP errors (404 unknown version, 405 wrong
method, 413 too large, 415 unsupported content encoding); everything else is
an XML-RPC response with status 200.
"""

from __future__ import annotations

import re
from functools import partial
from typing import TYPE_CHECKING

from flask import Blueprint, Request, Response, abort, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from .compression import BadCompression, TooLarge, UnsupportedEncoding, read_capped
from .dispatch import CallContext
from .faults import APPLICATION_ERROR, APPLICATION_ERROR_MESSAGE, Fault
from .protocols.xmlrpc_codec import decode_request, encode_fault, encode_response

if TYPE_CHECKING:
    from .settings import Settings
    from .state import RPCState

#: Clients that read ``<i8>``: Python's xmlrpc.client and Apache XML-RPC.
_I8_CLIENTS = re.compile(r"^(Python-xmlrpc/|Apache XML RPC)")


def make_blueprint(state: RPCState) -> Blueprint:
    """The blueprint serving ``<prefix>/`` and ``<prefix>/v<N>/`` for one app."""
    blueprint = Blueprint(state.blueprint_name, __name__, template_folder="templates")
    settings = state.settings
    dispatcher = state.dispatcher
    content_type = f"text/xml; charset={settings.encoding}"
    # The two result encoders (without and with ``<i8>``), made once.
    encoders = {
        use_i8: partial(
            encode_response,
            allow_none=settings.allow_none,
            encoding=settings.encoding,
            use_i8=use_i8,
        )
        for use_i8 in (False, True)
    }

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
        ctx = CallContext(
            version=version,
            protocol="xmlrpc",
            remote_addr=req.remote_addr,
            request_size=req.content_length,
            http_method=req.method,
            path=req.script_root + req.path,
            headers=req.headers,
        )
        try:
            body = _read_body(req, settings.max_request_size)
        except HTTPException as exc:
            # Transport rejections are logged too, under method "-" with the
            # HTTP status as their code.
            dispatcher.record_rejected(ctx, Fault(exc.code or 400, f"HTTP {exc.code}: {exc.name}"))
            raise
        ctx.body = body
        ctx.request_size = len(body)
        verifying = dispatcher.authenticator is not None
        try:
            if dispatcher.authenticator is not None:
                ctx.verified = dispatcher.authenticator.verify_request(ctx)
            verifying = False
            call = decode_request(
                body, allow_none=settings.allow_none, max_depth=settings.max_depth
            )
        except Fault as fault:
            # A failed scheme-v2 signature is logged under the method called
            # (when the body names one), not under "-".
            method = _method_name(body, settings) if verifying else "-"
            dispatcher.record_rejected(ctx, fault, method=method)
            return _xml(encode_fault(fault, encoding=settings.encoding))
        except Exception as exc:  # a bug (say, in the authenticator): still no 500
            current_app.logger.error("checking an RPC request failed", exc_info=exc)
            fault = Fault(APPLICATION_ERROR, APPLICATION_ERROR_MESSAGE)
            dispatcher.record_rejected(ctx, fault)
            return _xml(encode_fault(fault, encoding=settings.encoding))
        # The User-Agent header is only looked at when nothing else decides.
        use_i8 = settings.i8 == "always" or (
            settings.i8 == "auto"
            and (call.used_i8 or bool(_I8_CLIENTS.match(req.headers.get("User-Agent", ""))))
        )
        ctx.encoder = encoders[use_i8]
        try:
            payload = dispatcher.call(ctx, call.method, call.params)
        except Fault as fault:
            payload = encode_fault(fault, encoding=settings.encoding)
        return _xml(payload)

    def _xml(payload: bytes) -> Response:
        return Response(payload, 200, content_type=content_type)

    # strict_slashes=False: ``POST /rpc`` works too (no redirect, which
    # XML-RPC clients do not follow).
    options = {"methods": ["GET", "POST"], "strict_slashes": False}
    blueprint.add_url_rule("/", "endpoint", endpoint, defaults={"version": None}, **options)
    blueprint.add_url_rule("/v<int:version>/", "endpoint", endpoint, **options)
    return blueprint


def _method_name(body: bytes, settings: Settings) -> str:
    """The method a request body names, or ``"-"`` when it names none."""
    try:
        method = decode_request(
            body, allow_none=settings.allow_none, max_depth=settings.max_depth
        ).method
    except Fault:
        return "-"
    return method[:255] if method else "-"


def _read_body(req: Request, limit: int) -> bytes:
    """Read the request body, refusing more than ``limit`` bytes (HTTP 413).

    A gzip or deflate body is inflated with the same cap on its inflated
    size, so a compression bomb is refused without a memory spike; invalid or
    truncated compressed data, or data after its end, is HTTP 400. Any other
    content encoding is HTTP 415.
    """
    length = req.content_length
    if length is not None and length > limit:
        abort(413)
    encoding = req.headers.get("Content-Encoding", "identity")
    try:
        return read_capped(req.stream.read, encoding, limit, length)
    except TooLarge:
        abort(413)
    except UnsupportedEncoding:
        abort(415)
    except BadCompression as exc:
        abort(400, f"The compressed request body cannot be read: {exc}.")


def _method_page(state: RPCState, version: int | None) -> str:
    dispatcher = state.dispatcher
    procedures = state.registry.methods(version)
    authenticator = dispatcher.authenticator
    methods = []
    for procedure in procedures:
        prefix = authenticator.signature_prefix if (
            procedure.requires_auth and authenticator is not None
        ) else ()
        methods.append(
            {
                "name": procedure.name,
                "signature": procedure.checker.display,
                "xmlrpc_signatures": procedure.checker.signatures(prefix),
                "doc": procedure.doc,
                "auth": procedure.requires_auth,
                "auth_params": ", ".join(prefix),
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
    )
