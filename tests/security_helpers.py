"""Shared pieces of the security tests: one app with every component switched on.

Not a test module (no tests here): ``test_security_*.py`` import it.
"""

from __future__ import annotations

import re
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from live import basic_auth

from flask_rpcenable import Fault, RPCEnable, postpone
from flask_rpcenable.auth.signing import compute_signature, new_nonce
from flask_rpcenable.auth.users import create_api_user

ADMIN_USER = "admin"
ADMIN_PASSWORD = "correct horse battery"
APP_SECRET = "sec-test-SECRET_KEY-value-0123456789"

#: Markup an attacker would like to see rendered as is.
XSS = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "javascript:alert(3)",
    "</pre><svg onload=alert(4)>",
    "]]></title><script>alert(5)</script>",
)
#: What must never appear unescaped in an admin page.
RAW_MARKUP = re.compile(r"<script>alert|<img src=x onerror|<svg onload")


def basic(user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> dict[str, str]:
    return basic_auth(user, password)


@dataclass
class SecApp:
    app: Flask
    db: SQLAlchemy
    rpc: RPCEnable
    job: Any
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> Any:
        return self.app.test_client()

    def models(self) -> Any:
        return self.rpc.state(self.app).models

    def add_user(self, name: str) -> str:
        with self.app.app_context():
            _, key = create_api_user(self.db, self.models().APIUser, name)
        self.keys[name] = key
        return key

    def post(self, body: bytes | str, *, headers: dict[str, str] | None = None,
             path: str = "/rpc/", client: Any = None) -> Any:
        client = client or self.client
        return client.post(path, data=body, content_type="text/xml", headers=headers or {})

    def call(self, method: str, *params: Any, headers: dict[str, str] | None = None) -> Any:
        """The result, or the :class:`xmlrpc.client.Fault` the server answered."""
        response = self.post(
            xmlrpc.client.dumps(tuple(params), method, allow_none=True), headers=headers
        )
        assert response.status_code == 200, response.status_code
        try:
            return xmlrpc.client.loads(response.data)[0][0]
        except xmlrpc.client.Fault as fault:
            return fault

    def v1_args(self, username: str, key: str | None = None) -> list[Any]:
        nonce, timestamp = new_nonce(), int(time.time())
        key = self.keys[username] if key is None else key
        return [nonce, timestamp, username, compute_signature(nonce, timestamp, username, key)]

    def rows(self, name: str = "IncomingCall") -> list[Any]:
        with self.app.app_context():
            model = getattr(self.models(), name)
            rows = self.db.session.execute(self.db.select(model).order_by(model.id)).scalars()
            result = list(rows)
            for row in result:
                self.db.session.expunge(row)
            return result


def row_text(row: Any) -> str:
    """Every column of a row as one string."""
    return " ".join(str(getattr(row, c.name)) for c in row.__table__.columns)


def make_sec_app(tmp_path: Path, **config: Any) -> SecApp:
    """An app with call logging, admin (Basic auth), HMAC auth and background jobs."""
    app = Flask("secapp", instance_path=str(tmp_path / "instance"))
    app.config.update(
        TESTING=True,
        SECRET_KEY=APP_SECRET,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'sec.sqlite'}",
        RPCENABLE_LOG_INCOMING=True,
        RPCENABLE_LOG_OUTGOING=True,
        RPCENABLE_ADMIN_USERNAME=ADMIN_USER,
        RPCENABLE_ADMIN_PASSWORD=ADMIN_PASSWORD,
        RPCENABLE_BACKGROUND="sync",
    )
    app.config.update(config)
    db = SQLAlchemy()
    db.init_app(app)
    rpc = RPCEnable()

    @rpc.register
    def echo(var: str = "") -> str:
        return var

    @rpc.register
    def take(value: Any = None) -> bool:
        return True

    @rpc.register
    def fail(message: str) -> str:
        raise Fault(1, message)

    @rpc.register
    def boom(message: str) -> str:
        raise RuntimeError(message)

    @rpc.register
    @rpc.auth
    def whoami(user: Any) -> str:
        return str(user.username)

    @postpone
    def job(text: str, api_key: str = "") -> None:
        raise RuntimeError(f"job failed: {text}")

    rpc.init_app(app, db=db)
    with app.app_context():
        db.create_all()
    return SecApp(app=app, db=db, rpc=rpc, job=job)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)
