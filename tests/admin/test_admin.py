"""The admin at /admin: access control, the log views, the dashboard, other admins."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, redirect, request
from flask_admin import Admin
from flask_sqlalchemy import SQLAlchemy
from live import basic_auth, build_app
from log_app import LogApp

from flask_rpcenable import RPCEnable
from flask_rpcenable.admin import RPCModelView, category_for, get_admin
from flask_rpcenable.admin.dashboard import build_dashboard

MakeLogApp = Callable[..., LogApp]
CREDENTIALS = {"RPCENABLE_ADMIN_USERNAME": "admin", "RPCENABLE_ADMIN_PASSWORD": "correct horse"}


basic = basic_auth


GOOD = basic("admin", "correct horse")


def test_admin_closed_without_configuration(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None)
    client = log.app.test_client()
    for path in ("/admin/", "/admin/incoming-calls/", "/admin/outgoing-calls/details/?id=1"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert b"RPCENABLE_ADMIN_USERNAME" in response.data
        assert b"RPCENABLE_ADMIN_ACCESS" in response.data
    # credentials do not help when none are configured
    assert client.get("/admin/", headers=GOOD).status_code == 403


def test_basic_auth(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, **CREDENTIALS)
    client = log.app.test_client()
    response = client.get("/admin/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    for headers in (
        basic("admin", "wrong"),
        basic("other", "correct horse"),
        basic("admin", ""),
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic !!!notbase64"},
    ):
        assert client.get("/admin/", headers=headers).status_code == 401, headers
    response = client.get("/admin/", headers=GOOD)
    assert response.status_code == 200
    assert b"RPC dashboard" in response.data
    assert client.get("/admin/incoming-calls/", headers=GOOD).status_code == 200


def test_password_alone_does_not_open(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, RPCENABLE_ADMIN_PASSWORD="pw")
    assert log.app.test_client().get("/admin/", headers=basic("", "pw")).status_code == 403


def test_access_hook(make_log_app: MakeLogApp) -> None:
    def allow() -> Any:
        if request.headers.get("X-Staff") == "yes":
            return True
        if request.headers.get("X-Login") == "redirect":
            return redirect("/login")
        return False

    log = make_log_app(None, RPCENABLE_ADMIN_ACCESS=allow)
    client = log.app.test_client()
    assert client.get("/admin/", headers={"X-Staff": "yes"}).status_code == 200
    denied = client.get("/admin/incoming-calls/")
    assert denied.status_code == 403 and b"not allowed" in denied.data
    login = client.get("/admin/", headers={"X-Login": "redirect"})
    assert login.status_code == 302 and login.headers["Location"] == "/login"


def test_access_hook_then_basic_auth(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, RPCENABLE_ADMIN_ACCESS=lambda: False, **CREDENTIALS)
    client = log.app.test_client()
    assert client.get("/admin/").status_code == 401
    assert client.get("/admin/", headers=GOOD).status_code == 200


def test_access_hook_as_import_path(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, RPCENABLE_ADMIN_ACCESS="test_admin.always_allow")
    assert log.app.test_client().get("/admin/").status_code == 200


def always_allow() -> bool:
    return True


def test_bad_access_setting_is_refused(make_app: Callable[..., Flask]) -> None:
    app = make_app(RPCENABLE_ADMIN_ACCESS=42)
    with pytest.raises(RuntimeError, match="RPCENABLE_ADMIN_ACCESS"):
        RPCEnable().init_app(app)


def test_admin_disabled(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, RPCENABLE_ADMIN_ENABLED=False, **CREDENTIALS)
    assert log.app.test_client().get("/admin/", headers=GOOD).status_code == 404
    assert get_admin(log.app) is None


def _fill(log: LogApp) -> None:
    log.call("echo", "first")
    log.call("refuse")
    log.call("math.add", 1, 2, path="/rpc/v2/")
    log.call("take", {"name": "alice", "password": "hunter2"})


def test_incoming_list_filters_search_and_detail(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url, **CREDENTIALS)
    _fill(log)
    client = log.app.test_client()
    page = client.get("/admin/incoming-calls/", headers=GOOD).get_data(as_text=True)
    # newest first
    order = [page.index(name) for name in ("take", "math.add", "refuse", "echo")]
    assert order == sorted(order)
    assert "hunter2" not in page
    # read-only: no create, edit or delete
    assert "/admin/incoming-calls/new/" not in page
    assert "/admin/incoming-calls/edit/" not in page
    assert client.get("/admin/incoming-calls/new/", headers=GOOD).status_code == 302
    # the filters the issue asks for exist
    for label in ("Method", "Version", "Username", "Success", "Time"):
        assert f'"{label}"' in page or f">{label}<" in page, label
    # search
    found = client.get("/admin/incoming-calls/?search=refuse", headers=GOOD).get_data(True)
    # Rows are told apart by their detail links: the search box echoes the word.
    ids = {r.method: r.id for r in log.rows()}
    assert f"details/?id={ids['refuse']}&" in found
    assert f"details/?id={ids['echo']}&" not in found and "math.add" not in found
    # filter by success = no (the "ok" boolean filter)
    filtered = _filter(client, "/admin/incoming-calls/", "Success", "equals", "0")
    assert "refuse" in filtered and "math.add" not in filtered and "echo" not in filtered
    # detail: params pretty-printed, secrets redacted
    row = next(r for r in log.rows() if r.method == "take")
    detail = client.get(f"/admin/incoming-calls/details/?id={row.id}", headers=GOOD)
    text = detail.get_data(as_text=True)
    assert detail.status_code == 200
    assert '<pre class="rpcenable-json">' in text
    assert '"password": "***"' in _unescape(text)
    assert "hunter2" not in text
    assert re.search(r"\[\s*\{\s*\n", _unescape(text))  # indented JSON


def _unescape(text: str) -> str:
    return text.replace("&#34;", '"').replace("&quot;", '"')


def _filter(client: Any, base: str, column: str, operation: str, value: str) -> str:
    """Apply one Flask-Admin filter by its label, as the filter UI would."""
    page = client.get(base, headers=GOOD).get_data(as_text=True)
    # Flask-Admin lists filters as [index, operation label, options] per column in JSON.
    match = re.search(r'<div id="filter-groups-data" class="d-none">(.*?)</div>', page, re.S)
    assert match, "filter definitions not found"
    import html
    import json

    groups = json.loads(html.unescape(match.group(1)))
    for entry in groups[column]:
        if entry["operation"] == operation:
            return client.get(
                f"{base}?flt0_{entry['index']}={value}", headers=GOOD
            ).get_data(as_text=True)
    raise AssertionError(f"no {operation!r} filter for {column!r}: {groups[column]}")


def test_outgoing_list(make_log_app: MakeLogApp) -> None:
    from flask_rpcenable.calllog.recorder import record_outgoing

    log = make_log_app(None, **CREDENTIALS)
    with log.app.app_context():
        record_outgoing(url="https://u:p@remote.example/rpc/", method="remote.echo",
                        params=["x"], response="ok", duration_ms=2.0)
    client = log.app.test_client()
    page = client.get("/admin/outgoing-calls/", headers=GOOD).get_data(as_text=True)
    assert "https://remote.example/rpc/" in page and "remote.echo" in page
    assert "u:p@" not in page
    row = log.rows(log.OutgoingCall)[0]
    detail = client.get(f"/admin/outgoing-calls/details/?id={row.id}", headers=GOOD)
    assert detail.status_code == 200 and "rpcenable-json" in detail.get_data(as_text=True)


def test_dashboard_numbers(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url, **CREDENTIALS)
    now = datetime.datetime.now(datetime.timezone.utc)
    table = log.IncomingCall.__table__
    rows = []
    # 20 calls of "a" in the last hours: durations 1..20 ms, 5 of them faults;
    # 4 calls of "b" three days ago; 1 call of "c" ten days ago (outside both windows).
    for i in range(20):
        rows.append({"created_at": now - datetime.timedelta(minutes=i * 30), "method": "a",
                     "ok": i % 4 != 0, "duration_ms": float(i + 1), "protocol": "xmlrpc"})
    for i in range(4):
        rows.append({"created_at": now - datetime.timedelta(days=3, minutes=i), "method": "b",
                     "ok": True, "duration_ms": 100.0 * (i + 1), "protocol": "xmlrpc"})
    rows.append({"created_at": now - datetime.timedelta(days=10), "method": "c", "ok": True,
                 "duration_ms": 1.0, "protocol": "xmlrpc"})
    with log.app.app_context():
        with log.db.engine.begin() as conn:
            conn.execute(table.insert(), rows)
        data = build_dashboard(log.state, sample=1000, now=now)
    day, week = data["windows"]
    assert (day.total.calls, day.total.errors) == (20, 5)
    [a] = day.methods
    assert (a.method, a.calls, a.errors) == ("a", 20, 5)
    assert a.error_rate == pytest.approx(0.25)
    assert a.p50 == pytest.approx(10.5) and a.p95 == pytest.approx(19.05)
    assert [m.method for m in week.methods] == ["a", "b"]
    b = week.methods[1]
    assert b.p50 == pytest.approx(250.0) and b.p95 == pytest.approx(385.0)
    assert week.total.calls == 24
    # the 24-hour chart: 24 bars, 20 calls in all
    chart = str(data["chart_day"])
    assert 'data-bars="24"' in chart and 'data-total="20"' in chart
    assert 'data-bars="168"' in str(data["chart_week"])
    assert 'data-total="24"' in str(data["chart_week"])
    # sampling bounds the percentile query and says so
    with log.app.app_context():
        sampled = build_dashboard(log.state, sample=5, now=now)["windows"][0]
    assert sampled.sampled and sampled.total.calls == 20
    # the page shows it all
    page = log.app.test_client().get("/admin/", headers=GOOD).get_data(as_text=True)
    assert "<svg" in page and "rpcenable-chart" in page
    assert "25.0 %" in page  # error rate of "a"
    assert "/admin/_rpcenable/static/rpcenable/admin.css" in page
    css = log.app.test_client().get("/admin/_rpcenable/static/rpcenable/admin.css")
    assert css.status_code == 200 and b"rpcenable-chart" in css.data
    css.close()


def test_dashboard_warns_when_logging_is_off(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, RPCENABLE_LOG_INCOMING=False, **CREDENTIALS)
    page = log.app.test_client().get("/admin/", headers=GOOD).get_data(as_text=True)
    assert "RPCENABLE_LOG_INCOMING" in page and "No calls in this period." in page


def test_views_inside_the_apps_own_admin(tmp_path: Any) -> None:
    app = build_app(tmp_path, RPCENABLE_LOG_INCOMING=True, **CREDENTIALS)
    db = SQLAlchemy()
    db.init_app(app)
    admin = Admin(app, name="My site")
    rpc = RPCEnable()
    rpc.init_app(app, db=db)
    assert get_admin(app) is admin
    assert category_for(admin) == "RPC"
    # views under the "RPC" category of the app's admin
    categories = {view.endpoint: view.category for view in admin._views}
    assert categories["rpcenable_incoming"] == "RPC"
    assert categories["rpcenable_outgoing"] == "RPC"
    assert categories["rpcenable_dashboard"] == "RPC"
    client = app.test_client()
    # the app's own index is the app's business; ours are protected
    assert client.get("/admin/rpc-dashboard/").status_code == 401
    assert client.get("/admin/rpc-dashboard/", headers=GOOD).status_code == 200
    assert client.get("/admin/incoming-calls/").status_code == 401
    # before `flask rpc init-db`: a clear message, not a 500
    missing = client.get("/admin/rpc-dashboard/", headers=GOOD).get_data(as_text=True)
    assert "flask rpc init-db" in missing
    with app.app_context():
        db.engine.dispose()


def test_app_view_next_to_ours_on_rpcmodelview(tmp_path: Any) -> None:
    app = build_app(tmp_path, **CREDENTIALS)
    db = SQLAlchemy()

    class Widget(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "widget"
        id = sa.Column(sa.Integer, primary_key=True)
        name = sa.Column(sa.String(50), nullable=False)

    class WidgetView(RPCModelView):
        column_list = ("name",)

    db.init_app(app)
    rpc = RPCEnable()

    rpc.init_app(app, db=db)
    # What logging.rst shows: the app adds its own view next to ours.
    admin = get_admin(app)
    assert admin is not None
    admin.add_view(
        WidgetView(Widget, db, name="Widgets", category=category_for(admin), endpoint="widgets")
    )
    with app.app_context():
        db.create_all()
    client = app.test_client()
    assert client.get("/admin/widgets/").status_code == 401
    assert client.get("/admin/widgets/new/", headers=GOOD).status_code == 200
    # CSRF: a form post without the token is refused, nothing is saved
    response = client.post("/admin/widgets/new/", data={"name": "nope"}, headers=GOOD)
    assert response.status_code == 200 and b"Failed to create record" in response.data
    with app.app_context():
        assert db.session.scalars(sa.select(Widget.name)).all() == []
    form = client.get("/admin/widgets/new/", headers=GOOD).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', form
    )
    assert token
    saved = client.post("/admin/widgets/new/", headers=GOOD,
                        data={"name": "yes", "csrf_token": token.group(1)})
    assert saved.status_code == 302
    with app.app_context():
        assert db.session.scalars(sa.select(Widget.name)).all() == ["yes"]
        db.engine.dispose()


def test_only_primary_sets_up_admin(tmp_path: Any) -> None:
    app = build_app(tmp_path, **CREDENTIALS)
    first, second = RPCEnable(), RPCEnable(name="second", url_prefix="/second")
    first.init_app(app)
    second.init_app(app)
    admins = app.extensions["admin"]
    assert len(admins) == 1
    assert first.state(app).admin is not None
    assert second.state(app).admin is None
    with app.app_context():
        first.state(app).db.engine.dispose()
