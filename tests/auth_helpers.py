"""Helpers for the auth tests (no tests here): an app with guarded methods,
API users, and clients for both schemes over real HTTP."""

from __future__ import annotations

import http.client
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from live import build_app

from flask_rpcenable import RPCEnable
from flask_rpcenable.auth import prepared
from flask_rpcenable.auth.signing import compute_signature, new_nonce, sign_request_v2
from flask_rpcenable.auth.users import create_api_user


def new_app(path: Path, **config: Any) -> Flask:
    """A test app for the auth tests (no admin)."""
    return build_app(path, name="authapp", **{"RPCENABLE_ADMIN_ENABLED": False, **config})


@dataclass
class AuthEnv:
    app: Flask
    rpc: RPCEnable
    db: SQLAlchemy
    model: type
    keys: dict[str, str] = field(default_factory=dict)
    #: Arguments the guarded functions were called with.
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    url: str = ""

    def add_user(self, name: str, *, active: bool = True) -> str:
        with self.app.app_context():
            _, key = create_api_user(self.db, self.model, name, active=active)
        self.keys[name] = key
        return key

    def user(self, name: str) -> Any:
        with self.app.app_context():
            user = self.db.session.execute(
                self.db.select(self.model).where(self.model.username == name)
            ).scalar_one()
            self.db.session.expunge(user)
            return user

    def proxy(self, path: str = "/rpc/", **kwargs: Any) -> xmlrpc.client.ServerProxy:
        return xmlrpc.client.ServerProxy(self.url + path, allow_none=True, **kwargs)

    def call_as(self, name: str = "alice", key: str | None = None) -> Any:
        """``auth_echo("x")`` over v1 as ``name`` (with its own key unless ``key``)."""
        return self.proxy().auth_echo(*v1(name, key or self.keys[name]), "x")

    def set_user(self, name: str, **values: Any) -> None:
        """Change columns of user ``name`` with one committed UPDATE."""
        with self.app.app_context():
            self.db.session.execute(
                sa.update(self.model).where(self.model.username == name).values(**values)
            )
            self.db.session.commit()

    def v2_proxy(self, username: str, key: str | None = None, path: str = "/rpc/",
                 **tamper: Any) -> xmlrpc.client.ServerProxy:
        transport = V2Transport(username, key or self.keys[username], **tamper)
        return xmlrpc.client.ServerProxy(self.url + path, transport=transport, allow_none=True)


def make_env(
    tmp_path: Path,
    *,
    serve: Callable[[Flask], Any] | None = None,
    setup: Callable[[RPCEnable, SQLAlchemy], None] | None = None,
    **config: Any,
) -> AuthEnv:
    """An app with ``auth_echo`` (guarded), ``echo`` (public) and ``v2.whoami``."""
    app = new_app(tmp_path, **config)
    db = SQLAlchemy()
    db.init_app(app)
    rpc = RPCEnable()
    env = AuthEnv(app=app, rpc=rpc, db=db, model=object)

    @rpc.register
    @rpc.auth
    def auth_echo(user: Any, var: str = "") -> str:
        """Say something as a user."""
        env.calls.append((user.username, var))
        return f"User {user.username} says: {var}"

    @rpc.register
    def echo(var: str = "") -> str:
        return f"Server says: {var}"

    @rpc.register(name="whoami", version=2)
    @rpc.auth()
    def whoami(user: Any) -> str:
        return user.username

    if setup is not None:
        setup(rpc, db)
    rpc.init_app(app, db=db)
    env.model = rpc.state(app).models.APIUser
    with app.app_context():
        db.create_all()
    if serve is not None:
        env.url = serve(app).url
    return env


def v1(username: str, key: str, *, nonce: str | None = None,
       timestamp: int | str | None = None, signature: str | None = None) -> list[Any]:
    """The four v1 auth parameters (each part overridable)."""
    nonce = new_nonce() if nonce is None else nonce
    timestamp = int(time.time()) if timestamp is None else timestamp
    if signature is None:
        signature = compute_signature(nonce, timestamp, username, key)
    return [nonce, timestamp, username, signature]


def fault_of(call: Callable[[], Any]) -> xmlrpc.client.Fault:
    try:
        result = call()
    except xmlrpc.client.Fault as fault:
        return fault
    raise AssertionError(f"expected a fault, got {result!r}")


class V2Transport(xmlrpc.client.Transport):
    """Signs each request with scheme v2; ``sign_*`` sign something else (tampering)."""

    def __init__(self, username: str, key: str, *, sign_body: bytes | None = None,
                 sign_path: str | None = None, sign_method: str = "POST",
                 nonce: str | None = None) -> None:
        super().__init__()
        self.username, self.key = username, key
        self.sign_body, self.sign_path, self.sign_method = sign_body, sign_path, sign_method
        self.nonce = nonce
        self.headers_sent: list[str] = []
        self._path = "/"

    def send_request(self, connection: Any, handler: str, request_body: bytes,
                     debug: bool) -> Any:
        self._path = handler
        return super().send_request(connection, handler, request_body, debug)

    def send_content(self, connection: Any, request_body: bytes) -> None:
        header = sign_request_v2(
            self.username,
            self.key,
            self.sign_method,
            self.sign_path if self.sign_path is not None else self._path,
            self.sign_body if self.sign_body is not None else request_body,
            nonce=self.nonce,
        )
        self.headers_sent.append(header)
        connection.putheader("Authorization", header)
        super().send_content(connection, request_body)


def post_raw(url: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    """POST bytes; return the result or the Fault the server answered."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("POST", parts.path or "/", body,
                           {"Content-Type": "text/xml", **(headers or {})})
        response = connection.getresponse()
        data = response.read()
        assert response.status == 200, (response.status, data[:200])
    finally:
        connection.close()
    try:
        return xmlrpc.client.loads(data)[0][0]
    except xmlrpc.client.Fault as fault:
        return fault


def count_user_reads(monkeypatch: Any) -> list[str]:
    """The user names the lookup reads from the database from now on (the raw path)."""
    reads: list[str] = []
    original = prepared.PreparedSelect.first

    def first(self: Any, engine: Any, values: dict[str, Any]) -> Any:
        reads.append(values["username"])
        return original(self, engine, values)

    monkeypatch.setattr(prepared.PreparedSelect, "first", first)
    return reads
