"""Shared fixtures: a fresh app per test, and a real HTTP server for wire tests.

Servers used by some tests are found through environment variables that
``.ci/run`` always sets; a test that needs one skips only where it is unset:

- ``RPCENABLE_TEST_POSTGRES_URL``: a SQLAlchemy URL of an empty PostgreSQL database
- ``RPCENABLE_TEST_REDIS_URL``: ``redis://127.0.0.1:6379/0`` or the like
- ``RPCENABLE_TEST_MEMCACHED``: ``127.0.0.1:11211``
- ``RPCENABLE_TEST_CHROMIUM``: path of the Chromium binary (``/usr/bin/chromium``)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from flask_rpcenable import RPCEnable


def env_or_skip(name: str) -> str:
    """The value of an environment variable, or skip the test."""
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set (.ci/run sets it)")
    return value


def build_app(tmp_path: Any, **config: Any) -> Flask:
    """A fresh Flask app with test settings and an instance folder in ``tmp_path``."""
    app = Flask("testapp", instance_path=str(tmp_path / "instance"))
    app.config.update(
        TESTING=True,
        SECRET_KEY="test-secret-key-not-for-production",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'test.sqlite'}",
    )
    app.config.update(config)
    return app


@pytest.fixture
def rpc() -> RPCEnable:
    """A fresh, empty RPCEnable object (not yet on an app)."""
    return RPCEnable()


@pytest.fixture
def make_app(tmp_path: Any) -> Callable[..., Flask]:
    """Build a fresh app: ``make_app(**config)``."""

    def factory(**config: Any) -> Flask:
        return build_app(tmp_path, **config)

    return factory


@pytest.fixture
def app(make_app: Callable[..., Flask], rpc: RPCEnable) -> Flask:
    """A fresh app with ``rpc`` set up on it."""
    application = make_app()
    rpc.init_app(application)
    return application


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


class LiveServer:
    """A Werkzeug server running an app in a thread on 127.0.0.1."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], LiveServer]]:
    """Start real HTTP servers: ``server = serve(app)``; ``server.url``."""
    servers: list[LiveServer] = []

    def start(application: Flask) -> LiveServer:
        server = LiveServer(application)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def live_server(app: Flask, serve: Callable[[Flask], LiveServer]) -> LiveServer:
    """``app`` served over real HTTP."""
    return serve(app)
