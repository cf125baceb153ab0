"""Per-call overhead of the request path against the standard library; run by hand.

    python benchmarks/bench_call.py              # the installed flask_rpcenable
    python benchmarks/bench_call.py --quick      # fewer calls, for a rough look
    PYTHONPATH=/some/copy python benchmarks/bench_call.py   # another checkout

Not collected by pytest (it is no ``test_*.py`` and lives outside
``tests/``). Every call goes through Flask's test client, so the numbers
include Werkzeug's request and response handling; the baseline is a plain
Flask view around :class:`xmlrpc.server.SimpleXMLRPCDispatcher`, measured
in the same process, so the ratios compare like with like on whatever
machine runs it. Each number is the best of several rounds, in
microseconds per call.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import xmlrpc.client
from collections.abc import Callable
from typing import Any
from xmlrpc.server import SimpleXMLRPCDispatcher

from flask import Flask, request

import flask_rpcenable
from flask_rpcenable import RPCEnable
from flask_rpcenable.signing import generate_auth_args
from flask_rpcenable.users import create_api_user

ADD_BODY = xmlrpc.client.dumps((1, 2), "add").encode()
#: 200 small structs in, their count out.
STRUCTS_BODY = xmlrpc.client.dumps(
    ([{"id": i, "name": f"item {i}", "price": 1.5 * i, "tags": ["a", "b"]} for i in range(200)],),
    "count",
).encode()


def stdlib_app() -> Flask:
    """The baseline: a plain Flask view around the standard library's dispatcher."""
    dispatcher = SimpleXMLRPCDispatcher(allow_none=True, encoding="utf-8")
    dispatcher.register_function(lambda a, b: a + b, "add")
    dispatcher.register_function(len, "count")
    app = Flask("baseline")
    app.config["TESTING"] = True

    @app.post("/rpc/")
    def endpoint() -> bytes:
        return dispatcher._marshaled_dispatch(request.get_data())

    return app


def rpcenable_app(*, log: bool) -> tuple[Flask, RPCEnable]:
    """An app with ``add``, ``count`` and an authenticated ``whoami_add``."""
    app = Flask("bench", instance_path=tempfile.mkdtemp(prefix="bench_call_"))
    app.config.update(
        TESTING=True,
        SECRET_KEY="bench-secret-key-bench-secret-key",
        RPCENABLE_LOG_INCOMING=log,
        RPCENABLE_ADMIN_ENABLED=False,
    )
    rpc = RPCEnable()

    @rpc.register
    def add(a: int, b: int) -> int:
        return a + b

    @rpc.register
    def count(items: list) -> int:
        return len(items)

    @rpc.register
    @rpc.auth
    def secure_add(user: Any, a: int, b: int) -> int:
        return a + b

    rpc.init_app(app)
    with app.app_context():
        rpc.state(app).db.create_all()
    return app, rpc


def check(client: Any, body: bytes, expected: Any) -> None:
    """One call, to make sure the case measures a success and not a fault."""
    response = client.post("/rpc/", data=body, content_type="text/xml")
    assert response.status_code == 200, response.status_code
    (result,), _ = xmlrpc.client.loads(response.data)
    assert result == expected, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    rounds = args.rounds

    def n(count: int) -> int:
        return max(20, int(count * scale))

    print(f"flask_rpcenable from {flask_rpcenable.__file__}")
    print(f"Python {platform.python_version()} on {platform.machine()}")

    base = stdlib_app().test_client()
    check(base, ADD_BODY, 3)
    check(base, STRUCTS_BODY, 200)

    off_app, _ = rpcenable_app(log=False)
    off = off_app.test_client()
    check(off, ADD_BODY, 3)
    check(off, STRUCTS_BODY, 200)
    on_app, _ = rpcenable_app(log=True)
    on = on_app.test_client()
    check(on, ADD_BODY, 3)

    # The authenticated case: every call needs a fresh nonce, so the bodies
    # are signed ahead of each round and only the calls are timed.
    auth_app, auth_rpc = rpcenable_app(log=False)
    with auth_app.app_context():
        state = auth_rpc.state(auth_app)
        _, api_key = create_api_user(state.db, state.models.APIUser, "bench")
    auth = auth_app.test_client()

    def signed_bodies(count: int) -> list[bytes]:
        return [
            xmlrpc.client.dumps((*generate_auth_args("bench", api_key), 1, 2), "secure_add")
            .encode()
            for _ in range(count)
        ]

    check(auth, signed_bodies(1)[0], 3)

    def timed_auth(number: int) -> float:
        bodies = signed_bodies(number)
        start = time.perf_counter()
        for body in bodies:
            auth.post("/rpc/", data=body, content_type="text/xml")
        return (time.perf_counter() - start) / number * 1e6

    def timed(client: Any, body: bytes) -> Callable[[int], float]:
        def run(number: int) -> float:
            start = time.perf_counter()
            for _ in range(number):
                client.post("/rpc/", data=body, content_type="text/xml")
            return (time.perf_counter() - start) / number * 1e6

        return run

    # (label, the baseline it is compared with, calls per round, runner)
    cases: list[tuple[str, str, int, Callable[[int], float]]] = [
        ("add(1, 2): plain Flask view + stdlib dispatcher", "add", 1000, timed(base, ADD_BODY)),
        ("add(1, 2): flask-rpcenable, log off", "add", 1000, timed(off, ADD_BODY)),
        ("add(1, 2): flask-rpcenable, log on (SQLite)", "add", 500, timed(on, ADD_BODY)),
        ("add(1, 2): flask-rpcenable, auth v1, log off", "add", 300, timed_auth),
        ("count(200 structs): plain Flask + stdlib", "structs", 100, timed(base, STRUCTS_BODY)),
        ("count(200 structs): flask-rpcenable, log off", "structs", 100, timed(off, STRUCTS_BODY)),
    ]
    # Rounds interleave the cases, so that a busy spell on the machine
    # does not fall on one case only; each case keeps its best round.
    results = [float("inf")] * len(cases)
    for _ in range(rounds):
        for i, (_, _, number, run) in enumerate(cases):
            results[i] = min(results[i], run(n(number)))
    baselines = {cases[0][1]: results[0], cases[4][1]: results[4]}
    print(f"\nbest of {rounds} rounds, microseconds per call; ratio against the stdlib row")
    for (label, kind, _, _), us in zip(cases, results, strict=True):
        print(f"  {label:<52} {us:9.1f}  x{us / baselines[kind]:.2f}")


if __name__ == "__main__":
    main()
