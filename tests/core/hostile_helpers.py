"""The app of the hostile-input tests (``test_hostile_xml``, ``test_hostile_size``; no tests here).

``serving()`` serves an ``echo`` method with small limits (``LIMIT`` bytes, ``DEPTH`` levels);
``post_measured()`` posts a body and measures the memory the app took to answer it.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core_helpers import Reply, call_body, new_app, post, running

from flask_rpcenable import RPCEnable
from flask_rpcenable.calls import CallRecord

LIMIT = 64 * 1024
DEPTH = 4


@contextlib.contextmanager
def serving(path: Path) -> Iterator[tuple[str, list[CallRecord]]]:
    """Serve ``echo`` with the limits above; yields the URL and the records."""
    app = new_app(path, RPCENABLE_MAX_REQUEST_SIZE=LIMIT, RPCENABLE_MAX_DEPTH=DEPTH)
    rpc = RPCEnable()

    @rpc.register
    def echo(value: Any = "") -> Any:
        return value

    rpc.init_app(app)
    app.wsgi_app = measuring(app.wsgi_app)  # type: ignore[method-assign]
    records: list[CallRecord] = []
    rpc.state(app).dispatcher.recorders.append(records.append)
    with running(app) as base:
        yield base + "/rpc/", records


def still_answers(url: str) -> None:
    assert post(url, call_body("echo", "next")).loads() == "next"


PEAKS: list[int] = []


def measuring(wsgi_app: Any) -> Any:
    """WSGI middleware: while tracemalloc runs, note each request's memory peak.

    Measured around the app itself, because Werkzeug's development server
    allocates a fixed 10 MB buffer of its own after each request (to drain
    the socket) that says nothing about the endpoint.
    """

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if not tracemalloc.is_tracing():
            return wsgi_app(environ, start_response)
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        try:
            return list(wsgi_app(environ, start_response))
        finally:
            PEAKS.append(tracemalloc.get_traced_memory()[1] - base)

    return app


def post_measured(
    url: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[Reply, int]:
    """Post; return the reply and the peak of memory the app took to answer.

    The body is sent from a file object, so the client makes no copy of it.
    """
    headers = {**(headers or {}), "Content-Length": str(len(body))}
    _wait_for_idle_server()
    PEAKS.clear()
    tracemalloc.start()
    try:
        reply = post(url, io.BytesIO(body), headers)
    finally:
        tracemalloc.stop()
    assert len(PEAKS) == 1
    return reply, PEAKS[0]


def _wait_for_idle_server(timeout: float = 5.0) -> None:
    """Wait until no request of an earlier test is still being handled.

    The server answers each request in a thread that, after the response,
    drains the socket with a 10 MB buffer of its own: a drain still running
    when the measured request starts would count in its peak (the peak is
    the process's).
    """
    deadline = time.monotonic() + timeout
    while any(
        "process_request_thread" in thread.name for thread in threading.enumerate()
    ) and time.monotonic() < deadline:
        time.sleep(0.005)
