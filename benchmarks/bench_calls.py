"""Honest per-call benchmarks of flask-rpcenable against the floor and its peers.

Run by hand (not collected by pytest)::

    pip install Flask-XML-RPC-Re==0.2.0 "django-modern-rpc>=2,<3" "Django>=5,<6" \
        gunicorn psycopg2-binary          # the benchmark's extra dependencies
    bash .ci/services && . .ci/services.env   # optional: PostgreSQL for the logged-to-PG case
    python benchmarks/bench_calls.py              # 1.5 to 2 minutes on 2 cores
    python benchmarks/bench_calls.py --quick      # fewer rounds, a rough look
    python benchmarks/bench_calls.py --no-serve   # skip the gunicorn throughput run

What it does, and why (see docs/performance.rst):

* Every server is a WSGI app called **directly** (an environ and a
  ``start_response``, the response iterable read and closed), never through
  a test client, which would add its own ~120 us to each call.
* Every Flask app, ours and the others, has the **same** ``SECRET_KEY``: with
  a key Flask opens a cookie session on every request, so each side pays it.
  Django gets the same value in ``SECRET_KEY`` (it has no per-request session
  work without ``SessionMiddleware``).
* **The floor** is a plain Flask view around the standard library's
  ``xmlrpc.server.SimpleXMLRPCDispatcher``: the least any Flask XML-RPC
  endpoint can cost. Every ratio is to a number measured in the same run.
* The cases run **interleaved**: each round runs every case once (a batch of
  calls sized to ~``--batch-ms``, at least ``--min-calls``), so a busy spell of the (shared) machine
  is spread over all cases. A case's number is the **median** over rounds of
  its per-call mean in that round.
* The **garbage collector stays on**, as in production, and the process
  holds what a real one does: our apps with SQLAlchemy and Flask-Admin set up
  (Django and the peers too, which every side pays alike).
* Every response is decoded once before timing and compared with the
  expected value, so a case measures a success, never a fault.

Cases: the floor, Flask-XML-RPC-Re, django-modern-rpc, and flask-rpcenable
plain (log off), logged (embedded SQLite file in WAL mode, and PostgreSQL
when ``RPCENABLE_TEST_POSTGRES_URL`` is set), v1- and v2-authenticated (log
off); payloads: a small echo, an echo of 2,000 structs, a 100-entry
``system.multicall``, an echo of a 5 MB base64 value. Then the peak Python
memory (tracemalloc) of one 5 MB call per server, and a throughput run under
gunicorn (2 sync workers) on 127.0.0.1 with a bounded load generator.

Only the public API of flask_rpcenable is used: API users are created with
the ``flask rpc users create`` command, scheme v2 headers are signed here
from the documented wire contract (docs/auth.rst).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import hashlib
import hmac
import http.client
import importlib.metadata
import io
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.parse
import xmlrpc.client
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from xmlrpc.server import SimpleXMLRPCDispatcher

import flask_admin  # noqa: F401  (loaded as in a production process)
import sqlalchemy  # noqa: F401  (loaded as in a production process)
from flask import Flask, Response, request

import flask_rpcenable
from flask_rpcenable import RPCEnable, generate_auth_args

SECRET_KEY = "bench-secret-key-0123456789-bench-secret-key"
USERNAME = "bench"
API_KEY = "bench-api-key-0123456789abcdef-0123456789"
PG_DATABASE = "rpcenable_bench"
HERE = os.path.dirname(os.path.abspath(__file__))


# -- the function every server exposes ----------------------------------------


def echo(value: Any) -> Any:
    """Return the argument unchanged (the response re-encodes the request)."""
    return value


# -- payloads --------------------------------------------------------------------


def struct_list(count: int = 2000) -> list[dict[str, Any]]:
    """``count`` small structs of the common XML-RPC types (1.2 MB as a request)."""
    return [
        {
            "id": i,
            "name": f"item {i}",
            "price": 1.5 * i,
            "active": i % 2 == 0,
            "tags": ["a", "b"],
            "created": datetime.datetime(2024, 5, 17, 12, 30, i % 60),
        }
        for i in range(count)
    ]


@dataclass
class Payload:
    key: str
    label: str
    method: str  # "echo", or "system.multicall"
    args: tuple[Any, ...]  # params of echo, or of each multicall entry
    entries: int = 0  # multicall entries (0: a plain call)

    def expected(self) -> Any:
        if self.entries:
            return [[self.args[0]] for _ in range(self.entries)]
        return self.args[0]


def payloads() -> list[Payload]:
    rng = random.Random(13)
    return [
        Payload("small", "small echo", "echo", ("Hello, world!",)),
        Payload("structs", "2,000-struct echo", "echo", (struct_list(),)),
        Payload("multicall", "100-entry multicall", "system.multicall", ("Hello, world!",), 100),
        Payload("base64", "5 MB base64 echo", "echo", (rng.randbytes(5 * 1024 * 1024),)),
    ]


def encode_call(payload: Payload, method: str, auth: Callable[[], tuple] | None) -> bytes:
    """The request body; ``auth`` prepends v1 arguments to each call."""
    prefix = auth if auth is not None else tuple
    if payload.entries:
        calls = [
            {"methodName": method, "params": [*prefix(), *payload.args]}
            for _ in range(payload.entries)
        ]
        return xmlrpc.client.dumps((calls,), "system.multicall", allow_none=True).encode()
    return xmlrpc.client.dumps((*prefix(), *payload.args), method, allow_none=True).encode()


# -- calling a WSGI app directly --------------------------------------------------

BASE_ENVIRON = {
    "REQUEST_METHOD": "POST",
    "SCRIPT_NAME": "",
    "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_HOST": "127.0.0.1:8000",
    "CONTENT_TYPE": "text/xml",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
}


def call_wsgi(app: Any, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """POST ``body`` to ``app`` as a WSGI server would; return the response body."""
    environ = dict(BASE_ENVIRON)
    environ["PATH_INFO"] = path
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input"] = io.BytesIO(body)
    if headers:
        environ.update(headers)
    status: list[str] = []

    def start_response(s: str, h: list, exc_info: Any = None) -> Callable[[bytes], None]:
        status.append(s)
        return lambda data: None

    result = app(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not status or not status[0].startswith("200"):
        raise RuntimeError(f"HTTP {status} from {path}: {data[:300]!r}")
    return data


# -- the servers -------------------------------------------------------------------


def floor_app() -> Flask:
    """A plain Flask view around the standard library's dispatcher."""
    dispatcher = SimpleXMLRPCDispatcher(allow_none=True, encoding="utf-8", use_builtin_types=True)
    dispatcher.register_function(echo, "echo")
    dispatcher.register_multicall_functions()
    app = Flask("floor")
    app.config["SECRET_KEY"] = SECRET_KEY

    @app.post("/rpc/")
    def endpoint() -> Response:
        data = dispatcher._marshaled_dispatch(request.get_data())
        return Response(data, content_type="text/xml; charset=utf-8")

    return app


def xmlrpcre_app() -> Any:
    from flask_xmlrpcre import XMLRPCHandler

    app = Flask("xmlrpcre")
    app.config["SECRET_KEY"] = SECRET_KEY
    handler = XMLRPCHandler("api", multicall=True)
    handler.register(echo, "echo")
    handler.connect(app, "/rpc/")
    return app


def modernrpc_app() -> Any:
    """django-modern-rpc 2.x in a minimal in-process Django project."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY=SECRET_KEY,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=["modernrpc"],
            # Django's counterpart of Flask's cookie session (lazy: no work
            # unless the session is read, which an RPC call never does).
            MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
            DATABASES={},
            USE_TZ=True,
            DATA_UPLOAD_MAX_MEMORY_SIZE=10 * 1024 * 1024,
            LOGGING_CONFIG=None,
        )
        django.setup()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def _django_urlpatterns() -> list[Any]:
    from django.urls import path
    from modernrpc import RpcServer

    server = RpcServer()
    server.register_procedure(echo, name="echo")
    return [path("rpc/", server.view)]


def __getattr__(name: str) -> Any:  # ROOT_URLCONF=__name__: built when Django asks
    if name == "urlpatterns":
        value = globals()["urlpatterns"] = _django_urlpatterns()
        return value
    raise AttributeError(name)


def ours_app(
    name: str,
    instance: str,
    *,
    log: bool = False,
    database_uri: str | None = None,
    create_user: bool = True,
    user_cache_seconds: float = 0,
) -> Flask:
    """flask-rpcenable with its defaults (admin on), ``echo`` and ``auth_echo``.

    ``user_cache_seconds`` sets the opt-in ``RPCENABLE_AUTH_USER_CACHE_SECONDS``.
    """
    app = Flask(f"bench_{name}", instance_path=os.path.join(instance, name))
    app.config.update(SECRET_KEY=SECRET_KEY, RPCENABLE_LOG_INCOMING=log)
    if user_cache_seconds:
        app.config["RPCENABLE_AUTH_USER_CACHE_SECONDS"] = user_cache_seconds
    if database_uri:
        app.config["RPCENABLE_DATABASE_URI"] = database_uri
    rpc = RPCEnable()
    rpc.register(name="echo")(echo)

    @rpc.register
    @rpc.auth
    def auth_echo(user: Any, value: Any) -> Any:
        return value

    rpc.init_app(app)
    # Its warning that the replay cache lives in one process is expected here.
    app.logger.setLevel("ERROR")
    if not create_user:
        return app
    runner = app.test_cli_runner()  # the CLI, not the test client: no request goes through it
    result = runner.invoke(
        args=["rpc", "users", "create", "--key-from-stdin", USERNAME], input=API_KEY + "\n"
    )
    if result.exit_code != 0:
        raise RuntimeError(f"'flask rpc users create' failed: {result.output}")
    return app


def sign_v2(body: bytes, path: str) -> str:
    """An ``Authorization`` header of scheme v2, as docs/auth.rst specifies it."""
    nonce = secrets.token_urlsafe(24)
    timestamp = str(int(time.time()))
    to_sign = "\n".join(
        [
            "RPCEnable-HMAC-SHA256",
            "POST",
            path,
            hashlib.sha256(body).hexdigest(),
            nonce,
            timestamp,
            USERNAME,
        ]
    )
    signature = hmac.new(API_KEY.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"RPCEnable-HMAC-SHA256 username={urllib.parse.quote(USERNAME, safe='')}, "
        f"timestamp={timestamp}, nonce={nonce}, signature={signature}"
    )


@dataclass
class Server:
    key: str
    label: str
    app: Any
    path: str = "/rpc/"
    auth: str | None = None  # None, "v1" or "v2"
    #: "xmlrpc", or "jsonrpc" (the same app, called with JSON-RPC 2.0; small echo only)
    protocol: str = "xmlrpc"


@dataclass
class Case:
    server: Server
    payload: Payload
    bodies: Callable[[int], list[tuple[bytes, dict[str, str] | None]]]
    number: int = 1
    samples: list[float] = field(default_factory=list)  # per-call mean of each round, us

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def make_case(server: Server, payload: Payload) -> Case:
    if server.protocol == "jsonrpc":
        request = {"jsonrpc": "2.0", "method": "echo", "params": list(payload.args), "id": 1}
        json_body = json.dumps(request).encode()
        json_headers = {"CONTENT_TYPE": "application/json"}

        def bodies(n: int) -> list[tuple[bytes, dict[str, str] | None]]:
            return [(json_body, json_headers)] * n

        return Case(server, payload, bodies)
    if server.auth == "v1":
        method = "auth_echo"

        def bodies(n: int) -> list[tuple[bytes, dict[str, str] | None]]:
            auth = lambda: generate_auth_args(USERNAME, API_KEY)  # noqa: E731
            return [(encode_call(payload, method, auth), None) for _ in range(n)]

    elif server.auth == "v2":
        body = encode_call(payload, "auth_echo", None)

        def bodies(n: int) -> list[tuple[bytes, dict[str, str] | None]]:
            return [(body, {"HTTP_AUTHORIZATION": sign_v2(body, server.path)}) for _ in range(n)]

    else:
        body = encode_call(payload, "echo", None)

        def bodies(n: int) -> list[tuple[bytes, dict[str, str] | None]]:
            return [(body, None)] * n

    return Case(server, payload, bodies)


def check(case: Case) -> None:
    """One call whose response must decode to the expected value."""
    body, headers = case.bodies(1)[0]
    data = call_wsgi(case.server.app, case.server.path, body, headers)
    if case.server.protocol == "jsonrpc":
        result = json.loads(data)["result"]
    else:
        (result,), _ = xmlrpc.client.loads(data, use_builtin_types=True)
    if result != case.payload.expected():
        where = f"{case.server.key}/{case.payload.key}"
        raise AssertionError(f"{where}: unexpected {str(result)[:200]}")


def run_batch(case: Case) -> float:
    """Per-call mean of one batch, in microseconds (signing is done before timing)."""
    prepared = case.bodies(case.number)
    app, path = case.server.app, case.server.path
    start = time.perf_counter_ns()
    for body, headers in prepared:
        call_wsgi(app, path, body, headers)
    return (time.perf_counter_ns() - start) / case.number / 1000


# -- PostgreSQL -----------------------------------------------------------------------


def postgres_uri() -> tuple[str | None, str]:
    """A fresh ``rpcenable_bench`` database next to the test suite's, or why not."""
    base = os.environ.get("RPCENABLE_TEST_POSTGRES_URL")
    if not base:
        return None, "RPCENABLE_TEST_POSTGRES_URL is unset (. .ci/services.env)"
    try:
        import psycopg2
    except ImportError:
        return None, "psycopg2 is not installed"
    url = sqlalchemy.engine.make_url(base)
    try:
        conn = psycopg2.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname="postgres",
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
            cur.execute(f"CREATE DATABASE {PG_DATABASE}")
        conn.close()
    except Exception as exc:  # noqa: BLE001  (any failure: skip the case, say why)
        return None, f"cannot create database {PG_DATABASE}: {exc}"
    return url.set(database=PG_DATABASE).render_as_string(hide_password=False), ""


# -- the machine ------------------------------------------------------------------------


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def describe_machine() -> None:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    print(f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}")
    print(f"Python {platform.python_version()} ({platform.python_implementation()})")
    where = os.path.dirname(os.path.dirname(os.path.abspath(flask_rpcenable.__file__)))
    commit = subprocess.run(
        ["git", "-C", where, "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", where, "status", "--porcelain", "--", "flask_rpcenable"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(
        f"flask_rpcenable from {where}"
        + (f" at {commit[:70]}" if commit else " (not a git checkout)")
        + (" with uncommitted changes" if dirty else "")
    )
    names = [
        "flask-rpcenable",
        "Flask",
        "Werkzeug",
        "SQLAlchemy",
        "Flask-SQLAlchemy",
        "Flask-Admin",
        "Flask-XML-RPC-Re",
        "django-modern-rpc",
        "Django",
        "gunicorn",
        "psycopg2-binary",
    ]
    print("packages: " + ", ".join(f"{n} {version(n)}" for n in names))


# -- the gunicorn throughput run -----------------------------------------------------------


def gunicorn_app(kind: str) -> Any:
    """The WSGI app gunicorn serves (``bench_calls:gunicorn_app('ours')``)."""
    if kind == "floor":
        return floor_app()
    instance = os.environ["BENCH_INSTANCE"]
    return ours_app(kind, instance, log=kind == "ours_logged", create_user=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(port: int, body: bytes, total: int, concurrency: int, cap: float) -> dict[str, float]:
    """``total`` POSTs from ``concurrency`` threads, stopping after ``cap`` seconds."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    remaining = [total]
    deadline = time.monotonic() + cap

    def worker() -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            start = time.perf_counter_ns()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/rpc/", body, {"Content-Type": "text/xml"})
                response = conn.getresponse()
                response.read()
                conn.close()
                ok = response.status == 200
            except OSError:
                ok = False
            elapsed = (time.perf_counter_ns() - start) / 1e6
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {
        "done": len(latencies),
        "errors": errors,
        "rps": len(latencies) / wall,
        "p50": pick(0.50) if latencies else float("nan"),
        "p99": pick(0.99) if latencies else float("nan"),
        "wall": wall,
    }


def throughput(total: int, concurrency: int, cap: float) -> list[tuple[str, dict[str, float]]]:
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or shutil.which(
        "gunicorn"
    )
    if gunicorn is None:
        print("\ngunicorn is not installed: throughput run skipped (pip install gunicorn)")
        return []
    body = xmlrpc.client.dumps(("Hello, world!",), "echo").encode()
    rows = []
    for kind, label in [
        ("floor", "floor"),
        ("ours", "ours, plain"),
        ("ours_logged", "ours, logged (SQLite)"),
    ]:
        instance = tempfile.mkdtemp(prefix="bench_gunicorn_")
        port = free_port()
        env = dict(os.environ, BENCH_INSTANCE=instance, PYTHONWARNINGS="ignore")
        if kind != "floor":
            # Create the embedded database's tables here, so that the two
            # workers (each building its own app, no --preload) never race.
            ours_app(kind, instance, log=kind == "ours_logged", create_user=False)
        proc = subprocess.Popen(
            [
                gunicorn,
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "--chdir",
                HERE,
                "--log-level",
                "warning",
                f"bench_calls:gunicorn_app({kind!r})",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            for _ in range(200):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if proc.poll() is not None:
                        raise RuntimeError(proc.stderr.read().decode()[-2000:]) from None
                    time.sleep(0.1)
            load(port, body, 100, concurrency, 10)  # warm up both workers
            rows.append((label, load(port, body, total, concurrency, cap)))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            shutil.rmtree(instance, ignore_errors=True)
    return rows


# -- main ------------------------------------------------------------------------------------


def build_servers(instance: str) -> tuple[list[Server], list[str]]:
    servers = [Server("floor", "floor (Flask view + stdlib dispatcher)", floor_app())]
    notes = []
    for key, label, factory, dist in [
        ("xmlrpcre", "Flask-XML-RPC-Re", xmlrpcre_app, "Flask-XML-RPC-Re"),
        ("modernrpc", "django-modern-rpc (Django WSGI)", modernrpc_app, "django-modern-rpc"),
    ]:
        try:
            servers.append(Server(key, f"{label} {version(dist)}", factory()))
        except Exception as exc:  # noqa: BLE001  (a peer that does not work is reported)
            notes.append(f"{label}: skipped ({type(exc).__name__}: {exc})")
    plain = ours_app("ours", instance)
    servers.append(Server("ours", "ours, plain (log off)", plain))
    servers.append(Server("ours_json", "ours, JSON-RPC 2.0 (log off)", plain, protocol="jsonrpc"))
    sqlite_uri = f"sqlite:///{os.path.join(instance, 'log_sqlite', 'rpcenable.sqlite')}"
    servers.append(
        Server(
            "ours_sqlite",
            "ours, logged (embedded SQLite, WAL)",
            ours_app("log_sqlite", instance, log=True, database_uri=sqlite_uri),
        )
    )
    pg_uri, why = postgres_uri()
    if pg_uri:
        servers.append(
            Server(
                "ours_pg",
                "ours, logged (PostgreSQL)",
                ours_app("log_pg", instance, log=True, database_uri=pg_uri),
            )
        )
    else:
        notes.append(f"ours, logged (PostgreSQL): skipped ({why})")
    servers.append(
        Server(
            "ours_v1", "ours, v1-authenticated (log off)", ours_app("auth_v1", instance), auth="v1"
        )
    )
    servers.append(
        Server(
            "ours_v1_cached",
            "ours, v1, opt-in user cache 5 s",
            ours_app("auth_v1_cached", instance, user_cache_seconds=5),
            auth="v1",
        )
    )
    servers.append(
        Server(
            "ours_v2", "ours, v2-authenticated (log off)", ours_app("auth_v2", instance), auth="v2"
        )
    )
    return servers, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 15; quick 5)")
    parser.add_argument(
        "--batch-ms",
        type=float,
        help="target time of one case in one round (default 60 ms; quick 25)",
    )
    parser.add_argument(
        "--min-calls",
        type=int,
        help="fewest calls in a batch (default 3; quick 1): a batch of big calls then "
        "averages over the garbage collector's full collections instead of one call "
        "falling on either side of one",
    )
    parser.add_argument("--quick", action="store_true", help="a rough look in about 30 s")
    parser.add_argument("--no-serve", action="store_true", help="skip the gunicorn run")
    parser.add_argument("--requests", type=int, default=3000, help="requests per served app")
    parser.add_argument("--concurrency", type=int, default=4, help="load generator threads")
    parser.add_argument("--time-cap", type=float, default=10.0, help="seconds per served app")
    args = parser.parse_args()
    quick = {"rounds": 5, "batch_ms": 25.0, "min_calls": 1, "requests": 1000, "time_cap": 4.0}
    full = {"rounds": 15, "batch_ms": 60.0, "min_calls": 3}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) in (None, parser.get_default(name)):
            setattr(args, name, value)
    t0 = time.perf_counter()
    describe_machine()
    assert gc.isenabled()

    instance = tempfile.mkdtemp(prefix="bench_calls_")
    try:
        servers, notes = build_servers(instance)
        loads = payloads()
        cases = [
            make_case(s, p)
            for p in loads
            for s in servers
            if s.protocol == "xmlrpc" or p.key == "small"
        ]
        for case in cases:
            check(case)
        # Calibrate: calls per batch so that one batch takes about --batch-ms.
        for case in cases:
            once = run_batch(case)
            case.number = max(args.min_calls, min(2000, int(args.batch_ms * 1000 / once)))
        print(
            f"gc on (thresholds {gc.get_threshold()}), {len(gc.get_objects()):,} tracked "
            f"objects after setup; {len(cases)} cases x {args.rounds} interleaved rounds"
        )
        for note in notes:
            print("  " + note)

        for _ in range(args.rounds):
            for case in cases:
                case.samples.append(run_batch(case))
        timed = time.perf_counter() - t0

        report(servers, loads, cases, args.rounds)
        memory(servers, loads[-1])
        named_ratios(cases)
    finally:
        shutil.rmtree(instance, ignore_errors=True)

    if not args.no_serve:
        rows = throughput(args.requests, args.concurrency, args.time_cap)
        if rows:
            print(
                f"\nThroughput under gunicorn (2 sync workers, 127.0.0.1), small echo; "
                f"{args.concurrency} client threads, at most {args.requests} requests or "
                f"{args.time_cap:g} s each (client and server share the {os.cpu_count()} cores)"
            )
            print(f"  {'app':<26}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'done':>7}{'errors':>7}")
            for label, r in rows:
                print(
                    f"  {label:<26}{r['rps']:9.0f}{r['p50']:9.2f}{r['p99']:9.2f}"
                    f"{r['done']:7d}{r['errors']:7d}"
                )
    print(f"\ntimed rounds took {timed:.0f} s; whole run {time.perf_counter() - t0:.0f} s")


def report(servers: list[Server], loads: list[Payload], cases: list[Case], rounds: int) -> None:
    by = {(c.server.key, c.payload.key): c for c in cases}
    print(
        f"\nMicroseconds per call (median over {rounds} rounds of each round's mean), "
        "and x the floor for the same payload, measured in this run"
    )
    width = 40
    header = f"  {'server':<{width}}" + "".join(f"{p.label:>24}" for p in loads)
    print(header)
    for s in servers:
        line = f"  {s.label:<{width}}"
        for p in loads:
            case = by.get((s.key, p.key))
            if case is None:  # not measured for this server (JSON-RPC: small echo only)
                line += f"{'-':>14}  {'':<7}"
                continue
            floor = by[("floor", p.key)].median
            line += f"{case.median:>14,.0f} x{case.median / floor:<7.2f}"
        print(line.rstrip())
    spreads = sorted(((max(c.samples) - min(c.samples)) / c.median, c) for c in cases)
    numbers = [c.number for c in cases]
    print(
        f"  calls per batch: {min(numbers)} to {max(numbers)}; noisiest cases (max - min of "
        "the rounds, over the median): "
        + ", ".join(f"{c.server.key}/{c.payload.key} {s:.0%}" for s, c in spreads[-3:][::-1])
    )


def memory(servers: list[Server], payload: Payload) -> None:
    print(
        f"\nPeak Python memory of one {payload.label} call (tracemalloc, after the timed "
        "rounds; request body included)"
    )
    for s in servers:
        if s.protocol != "xmlrpc":
            continue
        case = make_case(s, payload)
        body, headers = case.bodies(1)[0]
        gc.collect()
        tracemalloc.start()
        try:
            call_wsgi(s.app, s.path, body, headers)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        print(
            f"  {s.label:<40}{peak / 1e6:8.1f} MB  ({peak / len(body):.1f}x the "
            f"{len(body) / 1e6:.1f} MB body)"
        )


NAMED = [
    ("small call, ours log off / floor", ("ours", "small"), ("floor", "small")),
    ("small call, JSON-RPC / XML-RPC (issue 11)", ("ours_json", "small"), ("ours", "small")),
    ("small call, logged (SQLite) / ours plain", ("ours_sqlite", "small"), ("ours", "small")),
    ("small call, logged (PostgreSQL) / ours plain", ("ours_pg", "small"), ("ours", "small")),
    ("2,000-struct echo, logged (SQLite) / plain", ("ours_sqlite", "structs"), ("ours", "structs")),
    ("5 MB base64 echo, logged (SQLite) / plain", ("ours_sqlite", "base64"), ("ours", "base64")),
    ("100-multicall, logged (SQLite) / plain", ("ours_sqlite", "multicall"), ("ours", "multicall")),
    ("100-multicall, logged (PostgreSQL) / plain", ("ours_pg", "multicall"), ("ours", "multicall")),
    ("small call, v1-authenticated / ours plain", ("ours_v1", "small"), ("ours", "small")),
    (
        "small call, v1, opt-in user cache / ours plain",
        ("ours_v1_cached", "small"),
        ("ours", "small"),
    ),
    ("small call, v2-authenticated / ours plain", ("ours_v2", "small"), ("ours", "small")),
    (
        "2,000-struct echo, ours / floor (admin, SQLAlchemy loaded, gc on)",
        ("ours", "structs"),
        ("floor", "structs"),
    ),
    ("100-multicall, ours / floor", ("ours", "multicall"), ("floor", "multicall")),
    ("5 MB base64 echo, ours / floor", ("ours", "base64"), ("floor", "base64")),
]


def named_ratios(cases: Iterable[Case]) -> None:
    by = {(c.server.key, c.payload.key): c.median for c in cases}
    print("\nNamed ratios (issues 12 and 13 targets), medians of this run")
    for label, top, bottom in NAMED:
        if top in by and bottom in by:
            print(f"  {label:<66} {by[top] / by[bottom]:6.2f}")
        else:
            print(f"  {label:<66}    n/a (case skipped)")


if __name__ == "__main__":
    main()
