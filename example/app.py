"""An example app: a few XML-RPC methods on the embedded defaults.

Run it from the repository root with either of::

    flask --app example.app run
    python -m example.app

and call it::

    >>> import xmlrpc.client
    >>> server = xmlrpc.client.ServerProxy("http://127.0.0.1:5000/rpc/")
    >>> server.system.listMethods()
    >>> server.echo("Hi!")
    >>> xmlrpc.client.ServerProxy("http://127.0.0.1:5000/rpc/v2/").math.add(2, 3)

Open http://127.0.0.1:5000/rpc/ in a browser for the list of methods. The
call log and API users live in an SQLite file in the instance folder; no
server needs to be started. Settings come from ``FLASK_*`` environment
variables (``FLASK_SECRET_KEY``, ``FLASK_RPCENABLE_...``), and the admin
login from ``RPCENABLE_ADMIN_USERNAME`` and ``RPCENABLE_ADMIN_PASSWORD``.
"""

from __future__ import annotations

import datetime
import os
import secrets
from typing import Any

from flask import Flask

from flask_rpcenable import Fault, RPCEnable

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
    app.config.update(config)
    rpc.init_app(app)
    with app.app_context():
        rpc.state(app).db.create_all()
    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
