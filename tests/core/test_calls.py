"""CallContext: the request's method, path and headers, read when asked."""

from __future__ import annotations

from flask import Flask

from flask_rpcenable.calls import CallContext


def test_a_context_reads_its_request_when_asked() -> None:
    app = Flask(__name__)
    with app.test_request_context(
        "/rpc/v2/",
        method="POST",
        base_url="http://example.test/mounted",
        headers={"User-Agent": "Apache XML RPC 3.1", "Authorization": "Scheme x"},
    ) as request_context:
        ctx = CallContext(version=2, request=request_context.request)
        assert ctx.http_method == "POST"
        assert ctx.path == "/mounted/rpc/v2/"  # the script root included, as v2 signs it
        assert ctx.headers["Authorization"] == "Scheme x"
        assert ctx.user_agent == "Apache XML RPC 3.1"


def test_a_context_without_a_request() -> None:
    ctx = CallContext(version=None)
    assert (ctx.http_method, ctx.path, dict(ctx.headers), ctx.user_agent) == ("POST", "/", {}, "")
