"""The admin in a real browser: Chromium driven by Playwright, against a real HTTP server."""

from __future__ import annotations

import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest
from flask_sqlalchemy import SQLAlchemy
from live import build_app

from flask_rpcenable import RPCEnable

sync_api = pytest.importorskip("playwright.sync_api")

USER, PASSWORD = "admin", "browser-test-password"




def _app(tmp_path: Path, **config: Any) -> tuple[Any, SQLAlchemy, RPCEnable]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    app = build_app(tmp_path, RPCENABLE_LOG_INCOMING=True, **config)
    db = SQLAlchemy()
    db.init_app(app)
    rpc = RPCEnable()

    @rpc.register
    def echo(var: str = "") -> str:
        """Say it back."""
        return f"Server says: {var}"

    @rpc.register(name="orders.create")
    def create_order(order: dict) -> int:
        if order.get("qty", 0) <= 0:
            raise xmlrpc.client.Fault(10, "quantity must be positive")
        return 1234

    rpc.init_app(app, db=db)
    with app.app_context():
        db.create_all()
    return app, db, rpc


def test_admin_in_chromium(tmp_path: Path, serve: Any, browser: Any) -> None:
    # Without any access configuration: 403 and how to configure it.
    closed_app, closed_db, _ = _app(tmp_path / "closed")
    closed = serve(closed_app)
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(f"{closed.url}/admin/")
    assert response is not None and response.status == 403
    assert "RPCENABLE_ADMIN_USERNAME" in page.content()
    context.close()

    app, db, _ = _app(tmp_path / "open", RPCENABLE_ADMIN_USERNAME=USER,
                      RPCENABLE_ADMIN_PASSWORD=PASSWORD)
    server = serve(app)
    proxy = xmlrpc.client.ServerProxy(f"{server.url}/rpc/")
    for word in ("alpha", "beta", "gamma"):
        proxy.echo(word)
    proxy.orders.create({"qty": 2, "api_key": "never-shown"})
    with pytest.raises(xmlrpc.client.Fault):
        proxy.orders.create({"qty": 0})
    proxy("close")()

    # Without credentials: 401 with a Basic challenge (Chromium would show its login
    # prompt; headless, it fails the navigation, so look at the response itself).
    context = browser.new_context()
    challenge = context.request.get(f"{server.url}/admin/")
    assert challenge.status == 401
    assert challenge.headers["www-authenticate"].startswith("Basic ")
    challenge.dispose()
    context.close()

    context = browser.new_context(
        http_credentials={"username": USER, "password": PASSWORD},
        viewport={"width": 1200, "height": 900},
    )
    page = context.new_page()
    try:
        response = page.goto(f"{server.url}/admin/")
        assert response is not None and response.status == 200
        page.wait_for_selector("svg.rpcenable-chart")
        assert page.locator("h1").first.inner_text() == "RPC dashboard"
        day_chart = page.locator("#chart-day svg.rpcenable-chart")
        assert day_chart.get_attribute("data-total") == "5"
        assert day_chart.locator("g.bar rect.ok").count() >= 1
        assert day_chart.locator("g.bar rect.err").count() == 1
        assert day_chart.bounding_box()["height"] > 50  # laid out, visible
        assert page.locator(".rpcenable-summary .rpcenable-calls").first.inner_text() == "5"
        error_rate = page.locator(".rpcenable-summary .rpcenable-error-rate").first
        assert error_rate.inner_text() == "20.0 %"
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

        # The incoming list, filtered through the filter UI: method contains "orders".
        page.goto(f"{server.url}/admin/incoming-calls/")
        assert page.locator("table.model-list tbody tr").count() == 5
        page.get_by_role("link", name="Add Filter").click()
        page.locator("a.filter", has_text="Method").first.click()
        row = page.locator("#filter_form table.filters tr").last
        assert "contains" in row.inner_text()
        row.locator("input.filter-val").fill("orders")
        apply = page.locator("#filter_form button[type=submit]")
        apply.wait_for(state="visible")  # shown once a filter value changes
        apply.click()
        page.wait_for_url("**flt*")
        rows = page.locator("table.model-list tbody tr")
        assert rows.count() == 2
        assert "echo" not in page.locator("table.model-list tbody").inner_text()
        page.screenshot(path=str(tmp_path / "incoming.png"), full_page=True)

        # One call's detail: params pretty-printed, the API key redacted.
        page.locator("table.model-list tbody tr a[title='View Record']").last.click()
        page.wait_for_selector("pre.rpcenable-json")
        params = page.locator("pre.rpcenable-json").first.inner_text()
        assert '"qty": 2' in params and '"api_key": "***"' in params
        assert "never-shown" not in page.content()
        page.screenshot(path=str(tmp_path / "detail.png"), full_page=True)
    finally:
        context.close()
    for name in ("dashboard.png", "incoming.png", "detail.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
    with app.app_context():
        db.engine.dispose()
    with closed_app.app_context():
        closed_db.engine.dispose()
