"""The example app: every part of flask-rpcenable on the embedded defaults.

Start it from the repository root (README.rst has the whole first run)::

    flask --app example.app run

It serves, on http://127.0.0.1:5000/rpc/:

- public methods: ``echo``, ``divide``, ``people.describe``, and ``math.add``
  at ``/rpc/v2/``;
- an authenticated method, ``auth_echo``, for API users made with
  ``flask --app example.app rpc users create alice``;
- ``reports.start``, which starts a background job (``@postpone``) and
  returns its id at once;
- ``relay.echo``, which calls this server's ``echo`` through the logged
  client :class:`~flask_rpcenable.XMLRPCPoint`: an outgoing call;
- the admin at http://127.0.0.1:5000/admin/ (incoming and outgoing calls,
  API users, jobs, a dashboard), with the login from
  ``RPCENABLE_ADMIN_USERNAME`` and ``RPCENABLE_ADMIN_PASSWORD``.

Every call, incoming and outgoing, is logged to an SQLite file in the
instance folder, which the extension sets up by itself: no server to start.
Settings come from ``FLASK_*`` environment variables (``FLASK_SECRET_KEY``,
``FLASK_RPCENABLE_...``).
"""

from __future__ import annotations

import datetime
import os
import secrets
import time
from typing import Any

from flask import Flask, current_app, request

from flask_rpcenable import Fault, RPCEnable, XMLRPCPoint, postpone

rpc = RPCEnable()

#: Fault code this example uses for its own refusals.
NOT_ALLOWED = 1


@rpc.register
def echo(var: str = "") -> str:
    """Return the argument prefixed with 'Server says: '."""
    return f"Server says: {var}"


@rpc.register(name="math.add", version=2)
def add(a: int, b: int) -> int:
    """Add two integers (only at /rpc/v2/)."""
    return a + b


@rpc.register(name="people.describe")
def describe(person: dict[str, Any]) -> dict[str, Any]:
    """Take a struct with 'name' and 'born' (a date) and return a summary struct."""
    name = str(person.get("name", "nobody"))
    born = person.get("born")
    summary: dict[str, Any] = {"name": name, "greeting": f"Hello, {name}!"}
    if isinstance(born, datetime.datetime):
        summary["born_weekday"] = born.strftime("%A")
    return summary


@rpc.register
def divide(a: float, b: float) -> float:
    """Divide a by b; dividing by zero is refused with fault 1."""
    if b == 0:
        raise Fault(NOT_ALLOWED, "Division by zero is not allowed")
    return a / b


@rpc.register
@rpc.auth
def auth_echo(user: Any, var: str = "") -> str:
    """Say something as the authenticated API user (HMAC scheme v1 or v2)."""
    return f"User {user.username} says: {var}"


@postpone
def write_report(title: str, seconds: float = 0.5) -> str:
    """The background job behind ``reports.start``: take a moment, then finish.

    A title of ``"fail"`` makes the job fail, to show a failed job in the
    admin (and the e-mail to ``RPCENABLE_ADMINS``, where mail is set up).
    """
    time.sleep(min(max(seconds, 0.0), 5.0))
    if title == "fail":
        raise RuntimeError("the report could not be written (on purpose)")
    current_app.logger.info("report %r written", title)
    return f"Report {title!r} written"


@rpc.register(name="reports.start")
def start_report(title: str, seconds: float = 0.5) -> str:
    """Start writing a report in the background; return the job's id at once."""
    return write_report(title, seconds).id


@rpc.register(name="relay.echo")
def relay_echo(var: str = "") -> str:
    """Call this server's own ``echo`` with the logged client: an outgoing call.

    The address is the one the server listens on (not the request's Host
    header, which a client chooses).
    """
    url = f"http://{request.environ['SERVER_NAME']}:{request.environ['SERVER_PORT']}/rpc/"
    with XMLRPCPoint(url, timeout=10) as remote:
        return f"Relayed: {remote.echo(var)}"


def _instance_secret(app: Flask) -> str:
    """A secret kept in the instance folder, made on first start.

    It must outlive a restart: API keys are stored encrypted under it, so a
    user created with ``flask --app example.app rpc users create`` keeps
    working when the server starts again. Set ``FLASK_SECRET_KEY`` in
    production instead.
    """
    path = os.path.join(app.instance_path, "secret_key")
    os.makedirs(app.instance_path, exist_ok=True)
    try:
        with open(path, encoding="ascii") as file:
            return file.read().strip()
    except FileNotFoundError:
        secret = secrets.token_hex(32)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secret)
        return secret


def create_app(**config: Any) -> Flask:
    """Build the example app.

    :param config: settings that win over the environment (tests use
        ``instance_path`` and the like through Flask's ``--app`` syntax).
    """
    instance_path = config.pop("instance_path", None)
    app = Flask(__name__, instance_path=instance_path)
    app.config.from_prefixed_env()
    for key in ("RPCENABLE_ADMIN_USERNAME", "RPCENABLE_ADMIN_PASSWORD"):
        if os.environ.get(key):
            app.config[key] = os.environ[key]
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(app)
    app.config.setdefault("RPCENABLE_LOG_INCOMING", True)
    app.config.setdefault("RPCENABLE_LOG_OUTGOING", True)
    app.config.update(config)
    rpc.init_app(app)  # the embedded database creates its tables on first start
    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
