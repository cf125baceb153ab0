"""Support for the background-job tests (no tests here).

An app factory and job functions that other processes import by name: the
subprocess tests (draining at exit, fork) and the RQ worker started with
``flask --app "background_helpers:create_app()" rpc worker``. Config comes
from keyword arguments and from ``BGTEST_*`` environment variables
(``BGTEST_RPCENABLE_BACKGROUND=rq`` sets ``RPCENABLE_BACKGROUND``). The
tests read an app's job records with ``records()`` and ``record()``.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from flask_rpcenable import RPCEnable
from flask_rpcenable.background import postpone

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
APP_SPEC = "background_helpers:create_app()"

rpc = RPCEnable()

#: In-process signalling between tests and thread-backend jobs.
events: dict[str, threading.Event] = {}


def create_app(instance_path: str | None = None, **config: Any) -> Flask:
    """An app with flask-rpcenable; ``BGTEST_*`` variables, then ``config``, set its config."""
    instance_path = instance_path or os.environ.get("BGTEST_INSTANCE", "/tmp/bgtest-instance")
    app = Flask("bgtestapp", instance_path=instance_path)
    app.config.update(SECRET_KEY="test-secret-key-not-for-production")
    app.config.from_prefixed_env("BGTEST")
    app.config.update(config)
    rpc.init_app(app)
    return app


def records(app: Flask) -> list[Any]:
    """The app's background job records, oldest first."""
    state = rpc.state(app)
    model = state.models.BackgroundJob
    with app.app_context():
        rows = state.db.session.scalars(sa.select(model).order_by(model.id)).all()
        state.db.session.expunge_all()
        return list(rows)


def record(app: Flask, job_id: str) -> Any:
    """The record of the job ``job_id``."""
    return next(r for r in records(app) if r.job_id == job_id)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MailSink:
    """An aiosmtpd handler keeping what it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(e.original_content or e.content, policy=policy.default)
            for e in self.envelopes
        ]


def smtp_server(port: int | None = None) -> Iterator[tuple[MailSink, int]]:
    """Run an aiosmtpd server on 127.0.0.1 while the generator is open."""
    from aiosmtpd.controller import Controller

    sink = MailSink()
    port = port or free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


# -- job functions (module level: the RQ worker imports them) ------------------


@postpone
def append_line(path: str, text: str, delay: float = 0.0) -> str:
    """Append ``text`` to the file at ``path``; return it."""
    if delay:
        time.sleep(delay)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text + "\n")
    return text


@postpone
def fail(message: str, api_token: str = "", note: str = "") -> None:
    """Always raise."""
    raise RuntimeError(message)


@postpone
def other_fail(message: str) -> None:
    """Always raise (a second function, for per-function throttling)."""
    raise ValueError(message)


@postpone(retries=1)
def flaky(path: str) -> int:
    """Fail on the first attempt, succeed on the second (counted in a file)."""
    with open(path, "a+", encoding="utf-8") as handle:
        handle.seek(0)
        count = len(handle.read().splitlines())
        handle.write("attempt\n")
    if count == 0:
        raise ConnectionError("first attempt fails")
    return count + 1


@postpone
def whoami() -> str:
    """The name and ``MARK`` setting of the app the job runs in."""
    return f"{current_app.name}:{current_app.config.get('MARK')}"


@postpone
def wait_for(name: str, started: str = "") -> str:
    """Block until the in-process event ``name`` is set (thread backend only)."""
    if started:
        events[started].set()
    if not events[name].wait(30):
        raise TimeoutError(name)
    return name


@postpone
def wait_for_file(path: str, started_path: str = "") -> str:
    """Block until a file exists (for subprocess tests)."""
    if started_path:
        with open(started_path, "w", encoding="utf-8") as handle:
            handle.write("started\n")
    for _ in range(3000):
        if os.path.exists(path):
            return path
        time.sleep(0.01)
    raise TimeoutError(path)


@postpone
def sleep_forever() -> None:
    time.sleep(3600)


@postpone
def die() -> None:
    """Kill the process running the job (the RQ work horse) without any Python exception."""
    os.kill(os.getpid(), signal.SIGKILL)
