"""The servers the benchmark calls: the floor, the peers, and flask-rpcenable as apps use it.

Every Flask app gets the same ``SECRET_KEY`` (Django too), so that each
side pays Flask's cookie session alike.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import os
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any
from xmlrpc.server import SimpleXMLRPCDispatcher

import flask_admin  # noqa: F401  (loaded as in a production process)
import sqlalchemy
from flask import Flask, Response, request

from flask_rpcenable import RPCEnable

SECRET_KEY = "bench-secret-key-0123456789-bench-secret-key"
USERNAME = "bench"
API_KEY = "bench-api-key-0123456789abcdef-0123456789"
PG_DATABASE = "rpcenable_bench"


# -- the function every server exposes ----------------------------------------


def echo(value: Any) -> Any:
    """Return the argument unchanged (the response re-encodes the request)."""
    return value


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


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


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


def gunicorn_app(kind: str) -> Any:
    """The WSGI app gunicorn serves (``bench_servers:gunicorn_app('ours')``)."""
    if kind == "floor":
        return floor_app()
    instance = os.environ["BENCH_INSTANCE"]
    return ours_app(kind, instance, log=kind == "ours_logged", create_user=False)
