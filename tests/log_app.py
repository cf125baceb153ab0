"""The app the call-log, admin and migration tests share: its own ``db`` and
``rpc``, a few registered functions, and a helper to read its log rows.

``fresh_pg_database`` creates a PostgreSQL database with a random name on
the server of ``RPCENABLE_TEST_POSTGRES_URL`` and drops it afterwards, so
these tests never collide with other tests running on the same server.
"""

from __future__ import annotations

import uuid
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from live import env_or_skip

from flask_rpcenable import RPCEnable

__all__ = ["LogApp", "fresh_pg_database", "register_functions"]


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

