"""Shared fixtures: a fresh app per test, and a real HTTP server for wire tests.

Servers used by some tests are found through environment variables that
``.ci/run`` always sets; a test that needs one skips only where it is unset:

- ``RPCENABLE_TEST_POSTGRES_URL``: a SQLAlchemy URL of an empty PostgreSQL database
- ``RPCENABLE_TEST_REDIS_URL``: ``redis://127.0.0.1:6379/0`` or the like
- ``RPCENABLE_TEST_MEMCACHED``: ``127.0.0.1:11211``
- ``RPCENABLE_TEST_CHROMIUM``: path of the Chromium binary (``/usr/bin/chromium``)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from live import LiveServer, build_app, env_or_skip, serving
from log_app import LogApp, fresh_pg_database, register_functions

from flask_rpcenable import RPCEnable

__all__ = ["LiveServer", "build_app", "env_or_skip"]


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


# -- the call-log app (calllog, admin and migration tests) -------------------------


@pytest.fixture(name="db_url", params=["sqlite", "postgresql"])
def db_url_fixture(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A database URL: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.sqlite'}"
    else:
        with fresh_pg_database() as url:
            yield url


@pytest.fixture(name="make_log_app")
def make_log_app_fixture(tmp_path: Any) -> Iterator[Callable[..., LogApp]]:
    """``make_log_app(url, **config)``: an app logging to ``url``, tables created."""
    made: list[LogApp] = []

    def factory(
        url: str | None = None, *, create: bool = True, setup: Callable[..., Any] | None = None,
        **config: Any,
    ) -> LogApp:
        config.setdefault("RPCENABLE_LOG_INCOMING", True)
        config.setdefault("RPCENABLE_LOG_OUTGOING", True)
        app = build_app(tmp_path, **config)
        if url is not None:
            app.config["SQLALCHEMY_DATABASE_URI"] = url
        db = SQLAlchemy()

        class Note(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "note"
            id = sa.Column(sa.Integer, primary_key=True)
            text = sa.Column(sa.String(100), nullable=False)

        db.init_app(app)
        rpc = RPCEnable()
        register_functions(rpc, db, Note)
        if setup is not None:
            setup(app, rpc)
        rpc.init_app(app, db=db)
        log_app = LogApp(app, db, rpc)
        log_app.Note = Note  # type: ignore[attr-defined]
        made.append(log_app)
        if create:
            with app.app_context():
                db.create_all()
        return log_app

    yield factory
    for log_app in made:
        log_app.dispose()
