"""Helpers shared by the call-log, admin and migration tests, and tests of the pure helpers.

``fresh_pg_database`` creates a PostgreSQL database with a random name on
the server of ``RPCENABLE_TEST_POSTGRES_URL`` and drops it afterwards, so
these tests never collide with other tests running on the same server.
"""

from __future__ import annotations

import datetime
import json
import uuid
import xmlrpc.client
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import env_or_skip
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from live import build_app

from flask_rpcenable import RPCEnable
from flask_rpcenable.admin.dashboard import percentile
from flask_rpcenable.calllog.recorder import (
    DEFAULTS,
    cut_text,
    dump_json,
    strip_url_credentials,
    summarize_multicall,
)
from flask_rpcenable.redact import is_secret_key, sanitize

KEYS = tuple(DEFAULTS["RPCENABLE_LOG_REDACT_KEYS"])


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; yields its SQLAlchemy URL."""
    psycopg2 = pytest.importorskip("psycopg2")
    base = sa.make_url(env_or_skip("RPCENABLE_TEST_POSTGRES_URL"))
    name = f"rpcenable_log_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(
        host=base.host,
        port=base.port,
        user=base.username,
        password=base.password,
        dbname=base.database,
    )
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


@pytest.fixture(name="db_url", params=["sqlite", "postgresql"])
def db_url_fixture(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A database URL: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.sqlite'}"
    else:
        with fresh_pg_database() as url:
            yield url


class LogApp:
    """An app with its own ``db``, ``rpc`` and a few registered functions."""

    def __init__(self, app: Flask, db: SQLAlchemy, rpc: RPCEnable) -> None:
        self.app = app
        self.db = db
        self.rpc = rpc
        self.state = rpc.state(app)
        self.IncomingCall = self.state.models.IncomingCall
        self.OutgoingCall = self.state.models.OutgoingCall

    def post(self, body: str | bytes, path: str = "/rpc/", **kwargs: Any) -> Any:
        response = self.app.test_client().post(
            path, data=body, content_type="text/xml", buffered=True, **kwargs
        )
        assert response.status_code == 200, response.data
        return response

    def call(self, method: str, *params: Any, path: str = "/rpc/", **kwargs: Any) -> Any:
        """Call over the test client; return the result or the Fault."""
        response = self.post(xmlrpc.client.dumps(params, method, allow_none=True), path, **kwargs)
        try:
            return xmlrpc.client.loads(response.data)[0][0]
        except xmlrpc.client.Fault as fault:
            return fault

    def rows(self, model: Any = None) -> list[Any]:
        model = model or self.IncomingCall
        with self.app.app_context():
            rows = self.db.session.scalars(sa.select(model).order_by(model.id)).all()
            self.db.session.expunge_all()
            return list(rows)

    def dispose(self) -> None:
        with self.app.app_context():
            for engine in self.db.engines.values():
                engine.dispose()


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


def register_functions(rpc: RPCEnable, db: SQLAlchemy, note: Any) -> None:
    @rpc.register
    def echo(var: str = "") -> str:
        return f"Server says: {var}"

    @rpc.register
    def take(value: Any = None) -> bool:
        return True

    @rpc.register
    def refuse() -> str:
        raise xmlrpc.client.Fault(42, "refused on purpose")

    @rpc.register
    def explode() -> str:
        raise ValueError("secret internal detail")

    @rpc.register
    def write_then_fail(text: str) -> str:
        db.session.add(note(text=text))
        db.session.flush()
        raise RuntimeError("user code failed after writing")

    @rpc.register
    def write(text: str) -> str:
        db.session.add(note(text=text))
        db.session.commit()
        return text

    @rpc.register(name="math.add", version=2)
    def add(a: int, b: int) -> int:
        return a + b


# -- tests of the pure helpers ------------------------------------------------


def test_secret_keys_are_recognised_in_any_spelling() -> None:
    for key in ("api_key", "API-Key", "apiKey", "password", "X-Auth-Token", "client_secret",
                "signature", "Authorization"):
        assert is_secret_key(key, KEYS), key
    for key in ("name", "monkey", "count", "username", "var"):
        assert not is_secret_key(key, KEYS), key


def test_sanitize_redacts_nested_structs_and_converts_types() -> None:
    when = datetime.datetime(2024, 5, 6, 7, 8, 9)
    value = [
        {"user": "alice", "api_key": "k1", "inner": [{"Password": "p", "n": 1}]},
        b"\x00\x01binary",
        xmlrpc.client.Binary(b"x" * 100),
        when,
        xmlrpc.client.DateTime(when),
        None,
        1.5,
    ]
    out = sanitize(value, 1000, KEYS)
    assert out[0] == {"user": "alice", "api_key": "***", "inner": [{"Password": "***", "n": 1}]}
    assert out[1].startswith("<binary 8 bytes, base64: AAFiaW5hcnk=")
    assert out[2].startswith("<binary 100 bytes, base64: ") and out[2].endswith("...>")
    assert out[3] == out[4] == "2024-05-06T07:08:09"
    assert out[5:] == [None, 1.5]
    json.dumps(out)  # JSON-ready


def test_dump_json_cuts_long_values() -> None:
    text = dump_json(["a" * 5000, list(range(3000))], 200, KEYS)
    assert len(text) <= 200
    assert "[cut: " in text


def test_cut_text_keeps_the_end_of_tracebacks() -> None:
    tb = "Traceback (most recent call last):\n" + "  frame\n" * 500 + "ValueError: the end"
    cut = cut_text(tb, 200, keep_tail=True)
    assert cut is not None and len(cut) <= 210
    assert cut.endswith("ValueError: the end")
    assert cut_text("short", 200) == "short"
    assert cut_text(None, 200) is None


def test_strip_url_credentials() -> None:
    url = "https://alice:s3cret@example.org:8443/rpc/?token=abc&x=1&api_key=zz#frag"
    stripped = strip_url_credentials(url)
    assert "alice" not in stripped and "s3cret" not in stripped
    assert "abc" not in stripped and "zz" not in stripped
    assert stripped.startswith("https://example.org:8443/rpc/?")
    assert "x=1" in stripped and "token=***" in stripped


def test_multicall_envelope_keeps_method_names_only() -> None:
    calls = [{"methodName": "a", "params": ["nonce", 1, "u", "sig"]}, {"methodName": "b"}, 5]
    assert summarize_multicall([calls]) == [{"methods": ["a", "b", "?"]}]
    assert summarize_multicall(["x", "y"]) == ["***", "***"]


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
