"""Make the admin screenshots of docs/logging.rst with Chromium (Playwright).

Run from the repository root::

    python docs/make_screenshots.py [--chromium /usr/bin/chromium]

It builds a demo app with a week of made-up calls in a temporary SQLite
database, serves it on 127.0.0.1 and saves PNGs into
``docs/_static/screenshots/``.
"""

from __future__ import annotations

import argparse
import datetime
import random
import tempfile
import threading
import xmlrpc.client
from pathlib import Path

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from werkzeug.serving import make_server

from flask_rpcenable import RPCEnable
from flask_rpcenable.calllog.recorder import record_outgoing

OUT = Path(__file__).parent / "_static" / "screenshots"
USER, PASSWORD = "admin", "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def demo_app(folder: Path) -> tuple[Flask, SQLAlchemy]:
    app = Flask("demo", instance_path=str(folder / "instance"))
    app.config.update(
        SECRET_KEY="demo-only",  # noqa: S106  (a throwaway demo app)
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{folder / 'demo.sqlite'}",
        RPCENABLE_LOG_INCOMING=True,
        RPCENABLE_LOG_OUTGOING=True,
        RPCENABLE_ADMIN_USERNAME=USER,
        RPCENABLE_ADMIN_PASSWORD=PASSWORD,
    )
    db = SQLAlchemy()
    db.init_app(app)
    rpc = RPCEnable()

    @rpc.register
    def echo(var: str = "") -> str:
        return f"Server says: {var}"

    @rpc.register(name="orders.create")
    def create_order(order: dict) -> int:
        if order.get("qty", 0) <= 0:
            raise xmlrpc.client.Fault(10, "quantity must be positive")
        return 1234

    rpc.init_app(app, db=db)
    with app.app_context():
        db.create_all()
        fill(app, db, rpc)
    return app, db


def fill(app: Flask, db: SQLAlchemy, rpc: RPCEnable) -> None:
    """A week of calls with a daily rhythm, a few faults and slow ones."""
    rng = random.Random(7)
    table = rpc.state(app).models.IncomingCall.__table__
    now = datetime.datetime.now(datetime.timezone.utc)
    methods = [("orders.create", 0.06, 35.0), ("orders.get", 0.01, 8.0),
               ("users.lookup", 0.02, 12.0), ("echo", 0.0, 0.4), ("reports.build", 0.1, 900.0)]
    rows = []
    for hour in range(24 * 7):
        start = now - datetime.timedelta(hours=hour)
        busy = 6 + 30 * max(0.0, 1 - abs((start.hour - 14) / 9))
        for _ in range(int(rng.gauss(busy, 3))):
            method, error_rate, typical = rng.choice(methods)
            ok = rng.random() >= error_rate
            rows.append({
                "created_at": start - datetime.timedelta(seconds=rng.randint(0, 3599)),
                "method": method, "protocol": rng.choice(["xmlrpc", "xmlrpc", "jsonrpc"]),
                "path": "/rpc/", "ok": ok,
                "params": _params(rng, method),
                "result": _result(rng, method) if ok else None,
                "fault_code": None if ok else 10,
                "fault_string": None if ok else "quantity must be positive",
                "duration_ms": rng.lognormvariate(0, 0.6) * typical,
                "remote_addr": rng.choice(["203.0.113.7", "2001:db8::42", "198.51.100.23"]),
                "username": rng.choice([None, "shop-frontend", "billing"]),
                "request_size": rng.randint(180, 2400),
            })
    with db.engine.begin() as conn:
        conn.execute(table.insert(), rows)
    for i in range(3):
        record_outgoing(url="https://partner.example/rpc/", method="stock.reserve",
                        params=["***", "***", "***", "***", {"sku": f"A-{i}", "qty": 1}],
                        response={"reserved": True}, duration_ms=40.0 + i)
    record_outgoing(url="https://partner.example/rpc/", method="stock.reserve", params=[],
                    exception="ConnectionRefusedError: [Errno 111] Connection refused",
                    duration_ms=3.1)


def _params(rng: random.Random, method: str) -> str:
    """Made-up params of a call, as the log stores them (JSON)."""
    if method == "orders.create":
        items = ", ".join(
            f'{{"sku": "A-{rng.randint(100, 999)}", "qty": {rng.randint(1, 5)}}}'
            for _ in range(rng.randint(1, 6))
        )
        return f'[{{"customer": {rng.randint(1, 9999)}, "items": [{items}], "note": ""}}]'
    if method == "echo":
        return '["ping"]'
    return f'[{{"id": {rng.randint(1, 9999)}}}]'


def _result(rng: random.Random, method: str) -> str:
    """A made-up result of a successful call (JSON)."""
    if method == "orders.create":
        return f'{{"order": {rng.randint(1000, 9999)}, "status": "accepted"}}'
    if method == "echo":
        return '"Server says: ping"'
    return "true"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        app, db = demo_app(Path(tmp))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        proxy = xmlrpc.client.ServerProxy(f"{url}/rpc/")
        proxy.orders.create({"qty": 2, "api_key": "not-logged"})
        multi = xmlrpc.client.MultiCall(proxy)
        multi.echo("one")
        multi.echo("two")
        multi()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=options.chromium, args=ARGS)
            context = browser.new_context(
                http_credentials={"username": USER, "password": PASSWORD},
                viewport={"width": 1280, "height": 800},
            )
            page = context.new_page()
            page.goto(f"{url}/admin/")
            page.screenshot(path=str(OUT / "dashboard.png"), full_page=True)
            page.goto(f"{url}/admin/incoming-calls/?page_size=20")
            page.screenshot(path=str(OUT / "incoming.png"))
            page.goto(f"{url}/admin/incoming-calls/")
            page.locator("table.model-list tbody tr a[title='View Record']").first.click()
            page.wait_for_selector("pre.rpcenable-json")
            page.screenshot(path=str(OUT / "detail.png"), full_page=True)
            page.goto(f"{url}/admin/outgoing-calls/")
            page.screenshot(path=str(OUT / "outgoing.png"))
            context.close()
            browser.close()
        server.shutdown()
        with app.app_context():
            db.engine.dispose()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
