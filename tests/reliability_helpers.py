"""Support for the load and fault suite (no tests here).

The app that gunicorn and the RQ worker load (``reliability_helpers:create_app()``,
config from ``RELTEST_*`` variables), private PostgreSQL and Redis servers on
free loopback ports (so that stopping them disturbs no other test), and a
bounded load generator.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.parsers.expat import ExpatError

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_rpcenable import RPCEnable, postpone
from flask_rpcenable.auth.signing import generate_auth_args

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
APP_SPEC = "reliability_helpers:create_app()"

db = SQLAlchemy()
rpc = RPCEnable()


class Done(db.Model):  # type: ignore[name-defined,misc]
    """One row per background job that ran."""

    __tablename__ = "rel_done"
    id = sa.Column(sa.Integer, primary_key=True)
    token = sa.Column(sa.String(64), nullable=False)


@rpc.register
def echo(token: str) -> str:
    return token


@rpc.register
def slow(token: str) -> str:
    time.sleep(0.05)
    return token


@rpc.register
def boom(token: str) -> str:
    raise ValueError(f"a bug ({token})")


@rpc.register
def fault(token: str) -> str:
    raise xmlrpc.client.Fault(42, f"refused {token}")


@rpc.register
@rpc.auth
def auth_echo(user: Any, token: str) -> str:
    return f"{user.username}:{token}"


@rpc.register
def schedule(token: str, delay: float = 0.0) -> str:
    return record_done(token, delay).id


@postpone
def record_done(token: str, delay: float = 0.0) -> None:
    if delay:
        time.sleep(delay)
    db.session.add(Done(token=token))
    db.session.commit()


def create_app(**overrides: Any) -> Flask:
    app = Flask("reltest", instance_path=os.environ.get("RELTEST_INSTANCE", "/tmp/reltest"))
    app.config.update(
        SECRET_KEY="reliability-test-secret-not-for-production",
        RPCENABLE_LOG_INCOMING=True,
        RPCENABLE_ADMIN_ENABLED=False,
        RPCENABLE_CACHE_TYPE="RedisCache",
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
    )
    app.config.from_prefixed_env("RELTEST")
    app.config.update(overrides)
    db.init_app(app)
    rpc.init_app(app, db=db)
    return app


# -- servers of our own -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def pg_bin(name: str) -> str | None:
    """A PostgreSQL program: on the PATH, else in Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which(name)
    if found:
        return found
    import glob

    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class Postgres:
    """A throw-away PostgreSQL cluster on a free loopback port."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="reltest-pg-")
        os.chmod(self.dir, 0o777)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = os.geteuid() == 0
        self._run([str(pg_bin("initdb")), "-D", self.data, "-A", "trust", "-U", "postgres"])

    def _run(self, args: list[str]) -> None:
        if self._as_postgres:
            shutil.chown(self.dir, "postgres")
            args = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(args)]
        subprocess.run(args, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        log = os.path.join(self.dir, "log")
        pg_ctl = str(pg_bin("pg_ctl"))
        self._run([pg_ctl, "-D", self.data, "-l", log, "-w", "-o", f"'{options}'", "start"])

    def stop(self) -> None:
        self._run([str(pg_bin("pg_ctl")), "-D", self.data, "-m", "fast", "-w", "stop"])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer:
    """A redis-server on a free loopback port, with an append-only file (as in
    production: queued jobs survive a restart)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="reltest-redis-")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, wait: float = 30) -> None:
    """Signal a process we started and wait for it; kill it if it will not end."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# -- load -----------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str
    token: str
    #: "ok", a fault code, or "unanswered" (connection failed: not answered).
    result: Any
    seconds: float
    value: Any = None


class OneTryTransport(xmlrpc.client.Transport):
    """xmlrpc.client's transport sends a request again when the connection was
    reset: after a killed worker that resend repeats a call (and its nonce).
    Here each call is sent once; a lost connection is an unanswered call."""

    def request(self, host: Any, handler: Any, request_body: Any, verbose: bool = False) -> Any:
        return self.single_request(host, handler, request_body, verbose)


@dataclass
class Load:
    """A bounded load generator: calls on loopback, a fixed count, a time cap."""

    url: str
    username: str
    api_key: str
    outcomes: list[Outcome] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: int = 0

    def token(self) -> str:
        with self._lock:
            self._counter += 1
            return f"tok{self._counter:06d}x"

    def call(self, kind: str, **options: Any) -> Outcome:
        token = self.token()
        proxy = xmlrpc.client.ServerProxy(self.url, allow_none=True, transport=OneTryTransport())
        start = time.perf_counter()
        value = None
        try:
            if kind == "auth_echo":
                value = proxy.auth_echo(*generate_auth_args(self.username, self.api_key), token)
            elif kind == "schedule":
                value = proxy.schedule(token, options.get("delay", 0.0))
            else:
                value = getattr(proxy, kind)(token)
            result: Any = "ok"
        except xmlrpc.client.Fault as exc:
            result = exc.faultCode
        except (OSError, xmlrpc.client.ProtocolError, http_errors(), ExpatError):
            # ExpatError: a worker killed between the response's headers and
            # its body (two writes in gunicorn) leaves an empty body.
            result = "unanswered"
        outcome = Outcome(kind, token, result, time.perf_counter() - start, value)
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def run(self, count: int, kinds: list[str], *, threads: int = 8, cap: float = 60.0,
            during: Callable[[int], None] | None = None, **options: Any) -> list[Outcome]:
        """Send ``count`` calls cycling through ``kinds`` from ``threads`` threads.

        ``during(i)`` runs in the caller's thread after every tenth of the calls.
        """
        deadline = time.monotonic() + cap
        index = iter(range(count))
        index_lock = threading.Lock()
        done: list[Outcome] = []

        def worker() -> None:
            while time.monotonic() < deadline:
                with index_lock:
                    i = next(index, None)
                if i is None:
                    return
                done.append(self.call(kinds[i % len(kinds)], **options))

        pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
        for thread in pool:
            thread.start()
        step = 0
        while any(thread.is_alive() for thread in pool) and time.monotonic() < deadline:
            time.sleep(0.05)
            if during is not None and len(done) >= (step + 1) * count // 10:
                step += 1
                during(step)
        for thread in pool:
            thread.join(max(0.0, deadline - time.monotonic()) + 5)
        return done


def worker_pids(master: subprocess.Popen[Any]) -> list[int]:
    """The gunicorn master's children: its workers."""
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(master.pid)], capture_output=True, text=True
    ).stdout
    return [int(pid) for pid in out.split()]


def wait_until(check: Callable[[], Any], timeout: float, step: float = 0.2) -> bool:
    """Whether ``check()`` turns true within ``timeout`` seconds (asked every ``step``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return bool(check())


def http_errors() -> type[Exception]:
    import http.client

    return http.client.HTTPException


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def child_env(**config: Any) -> dict[str, str]:
    """The environment for gunicorn and the RQ worker: ``RELTEST_*`` config."""
    env = dict(os.environ)
    env["PYTHONPATH"] = TESTS_DIR + os.pathsep + env.get("PYTHONPATH", "")
    for key, value in config.items():
        env[f"RELTEST_{key}"] = str(value)
    return env


@contextlib.contextmanager
def started(args: list[str], env: dict[str, str], log_path: str) -> Iterator[subprocess.Popen[Any]]:
    """Run a process for the block's duration; always stopped afterwards."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc, signal.SIGTERM, 30)
