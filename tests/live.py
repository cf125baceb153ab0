"""Real servers for tests: a Flask app (or any socketserver) in a thread on 127.0.0.1.

Not a test module. ``conftest.py`` builds its ``serve`` fixture on it; helper
modules use :func:`running` for module-scoped servers.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

#: How often a serving thread checks for shutdown: stops in about this long.
POLL_INTERVAL = 0.05


def env_or_skip(name: str) -> str:
    """The value of an environment variable, or skip the test."""
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set (.ci/run sets it)")
    return value


def basic_auth(user: str, password: str) -> dict[str, str]:
    """Headers for HTTP Basic authentication (the admin's login)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def build_app(path: Path, *, name: str = "testapp", **config: Any) -> Flask:
    """A fresh Flask app with test settings and an instance folder under ``path``."""
    app = Flask(name, instance_path=str(path / "instance"))
    app.config.update(
        TESTING=True,
        SECRET_KEY="test-secret-key-not-for-production",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{path / 'test.sqlite'}",
    )
    app.config.update(config)
    return app


class ServerThread:
    """Runs a server with ``serve_forever``/``shutdown`` in a daemon thread.

    :param server: a bound :mod:`socketserver`-style server.
    :param scheme: ``"http"`` or ``"https"``, for :attr:`url`.
    :param path: appended to :attr:`url` (e.g. ``"/RPC2"``).
    """

    def __init__(self, server: Any, *, scheme: str = "http", path: str = "") -> None:
        self._server = server
        self.port: int = server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}{path}"
        self._thread = threading.Thread(
            target=server.serve_forever, args=(POLL_INTERVAL,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class LiveServer(ServerThread):
    """A threaded Werkzeug server running ``app``; :attr:`url` has no trailing slash."""

    def __init__(self, app: Flask) -> None:
        super().__init__(make_server("127.0.0.1", 0, app, threaded=True))
        self.app = app


@contextlib.contextmanager
def serving() -> Iterator[Callable[[Flask], LiveServer]]:
    """``with serving() as serve: serve(app).url``; every server stops on exit."""
    started: list[LiveServer] = []

    def start(app: Flask) -> LiveServer:
        server = LiveServer(app)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@contextlib.contextmanager
def running(app: Flask) -> Iterator[LiveServer]:
    """Serve one app for the length of a ``with`` block."""
    with serving() as start:
        yield start(app)
