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
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from live import LiveServer, build_app, serving

from flask_rpcenable import RPCEnable

__all__ = ["LiveServer", "build_app", "env_or_skip"]


def env_or_skip(name: str) -> str:
    """The value of an environment variable, or skip the test."""
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set (.ci/run sets it)")
    return value


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


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], LiveServer]]:
    """Start real HTTP servers: ``server = serve(app)``; ``server.url``."""
    with serving() as start:
        yield start


@pytest.fixture
def live_server(app: Flask, serve: Callable[[Flask], LiveServer]) -> LiveServer:
    """``app`` served over real HTTP."""
    return serve(app)
