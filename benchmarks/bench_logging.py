"""How much call logging adds to one XML-RPC call (SQLite file, or any database URL).

Run::

    python benchmarks/bench_logging.py [--calls 2000] [--url postgresql+psycopg2://...]

It times the same call through Flask's test client with RPCENABLE_LOG_INCOMING
off and on, and prints the mean time per call of each and the difference.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import xmlrpc.client
from pathlib import Path

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_rpcenable import RPCEnable


def make_app(folder: Path, url: str | None, log: bool) -> tuple[Flask, SQLAlchemy]:
    app = Flask("bench", instance_path=str(folder / "instance"))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=url or f"sqlite:///{folder / 'bench.sqlite'}",
        RPCENABLE_LOG_INCOMING=log,
        RPCENABLE_LOG_RETENTION_DAYS=None,
        RPCENABLE_ADMIN_ENABLED=False,
    )
    db = SQLAlchemy()
    db.init_app(app)
    rpc = RPCEnable()

    @rpc.register
    def add(a: int, b: int) -> int:
        return a + b

    rpc.init_app(app, db=db)
    with app.app_context():
        db.create_all()
    return app, db


def per_call(app: Flask, calls: int) -> float:
    body = xmlrpc.client.dumps((1, 2), "add")
    client = app.test_client()
    for _ in range(50):  # warm up
        client.post("/rpc/", data=body, content_type="text/xml")
    start = time.perf_counter()
    for _ in range(calls):
        client.post("/rpc/", data=body, content_type="text/xml")
    return (time.perf_counter() - start) / calls * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--url", default=None, help="database URL (default: a SQLite file)")
    options = parser.parse_args()
    results = {}
    for log in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            app, db = make_app(Path(tmp), options.url, log)
            results[log] = per_call(app, options.calls)
            with app.app_context():
                if options.url:
                    db.drop_all()
                db.engine.dispose()
    off, on = results[False], results[True]
    print(f"logging off: {off:.3f} ms/call")
    print(f"logging on:  {on:.3f} ms/call  (+{on - off:.3f} ms per logged call)")


if __name__ == "__main__":
    main()
