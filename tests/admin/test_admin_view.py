"""The admin as a user sees it: list layout, previews, dashboard numbers and links,
who and what the log names for scheme-v2 calls, and the pages that explain setup.

Real apps on real SQLite files; the layout claims are measured in Chromium.
"""

from __future__ import annotations

import datetime
import re
import warnings
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from live import basic_auth, build_app

from flask_rpcenable import RPCEnable
from flask_rpcenable.auth.signing import sign_request_v2
from flask_rpcenable.auth.users import create_api_user

USER, PASSWORD = "admin", "view-test-password"
GOOD = basic_auth(USER, PASSWORD)


class Site:
    """An app with the admin open to :data:`USER`, a public and a guarded method."""

    def __init__(self, path: Path, **config: Any) -> None:
        path.mkdir(parents=True, exist_ok=True)
        settings = {
            "RPCENABLE_LOG_INCOMING": True,
            "RPCENABLE_ADMIN_USERNAME": USER,
            "RPCENABLE_ADMIN_PASSWORD": PASSWORD,
            **config,
        }
        self.app: Flask = build_app(path, name="viewapp", **settings)
        self.db = SQLAlchemy()
        self.db.init_app(self.app)
        self.rpc = RPCEnable()

        @self.rpc.register
        def echo(var: Any = "") -> Any:
            """Say it back."""
            return var

        @self.rpc.register
        @self.rpc.auth
        def auth_echo(user: Any, var: str = "") -> str:
            """Say it back as a user."""
            return f"{user.username}: {var}"

        self.rpc.init_app(self.app, db=self.db)
        self.state = self.rpc.state(self.app)
        with self.app.app_context():
            self.db.create_all()
        self.client = self.app.test_client()

    def post(self, method: str, *params: Any, headers: dict[str, str] | None = None) -> Any:
        body = xmlrpc.client.dumps(params, method, allow_none=True).encode()
        response = self.client.post("/rpc/", data=body, content_type="text/xml",
                                    headers=headers or {})
        assert response.status_code == 200
        try:
            return xmlrpc.client.loads(response.data)[0][0]
        except xmlrpc.client.Fault as fault:
            return fault

    def post_v2(self, username: str, key: str, method: str, *params: Any) -> Any:
        body = xmlrpc.client.dumps(params, method, allow_none=True).encode()
        header = sign_request_v2(username, key, "POST", "/rpc/", body)
        response = self.client.post("/rpc/", data=body, content_type="text/xml",
                                    headers={"Authorization": header})
        try:
            return xmlrpc.client.loads(response.data)[0][0]
        except xmlrpc.client.Fault as fault:
            return fault

    def add_user(self, name: str) -> str:
        with self.app.app_context():
            _, key = create_api_user(self.db, self.state.models.APIUser, name)
        return key

    def rows(self) -> list[Any]:
        table = self.state.models.IncomingCall.__table__
        with self.app.app_context(), self.db.engine.connect() as conn:
            return list(conn.execute(sa.select(table).order_by(table.c.id)).all())

    def insert(self, **row: Any) -> None:
        table = self.state.models.IncomingCall.__table__
        values = {
            "created_at": datetime.datetime.now(datetime.timezone.utc),
            "protocol": "xmlrpc",
            "path": "/rpc/",
            "ok": True,
            "params": "[]",
            "duration_ms": 1.0,
            **row,
        }
        with self.app.app_context(), self.db.engine.begin() as conn:
            conn.execute(table.insert(), [values])

    def get(self, path: str) -> Any:
        return self.client.get(path, headers=GOOD)

    def dispose(self) -> None:
        with self.app.app_context():
            self.db.engine.dispose()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    made = Site(tmp_path / "site")
    yield made
    made.dispose()


def _method_rows(html: str) -> dict[str, list[str]]:
    """The "By method, last 24 hours" table: method -> the other cells' text."""
    table = html.split('data-window="1"', 2)[2].split("</table>")[0]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        if len(cells) == 6:
            rows[cells[0]] = cells[1:]
    return rows


# -- the call list and the detail page ---------------------------------------


def test_list_shows_one_line_previews_and_the_detail_page_the_whole_value(site: Site) -> None:
    long_text = "word " * 100 + "THE-END"
    assert site.post("echo", {"text": long_text, "n": 1}) == {"text": long_text, "n": 1}
    page = site.get("/admin/incoming-calls/").get_data(as_text=True)
    params_cell = re.search(r'<td class="col-params">(.*?)</td>', page, re.S)
    result_cell = re.search(r'<td class="col-result">(.*?)</td>', page, re.S)
    assert params_cell and result_cell, "params and result are both list columns"
    for cell in (params_cell.group(1).strip(), result_cell.group(1).strip()):
        assert cell.endswith("\u2026") and len(cell) <= 80
        assert "THE-END" not in cell and "\n" not in cell
    row_id = site.rows()[-1].id
    detail = site.get(f"/admin/incoming-calls/details/?id={row_id}").get_data(as_text=True)
    assert detail.count("THE-END") == 2  # params and result, whole
    assert "rpcenable/admin.css" in detail


def test_sub_millisecond_durations_are_shown_in_the_list(site: Site) -> None:
    site.insert(method="fast", duration_ms=0.042)
    page = site.get("/admin/incoming-calls/").get_data(as_text=True)
    cell = re.search(r'<td class="col-duration_ms">(.*?)</td>', page, re.S)
    assert cell and cell.group(1).strip() == "0.04"


def test_own_admin_uses_the_page_width(site: Site) -> None:
    page = site.get("/admin/incoming-calls/").get_data(as_text=True)
    assert 'class="container-fluid"' in page
    assert "rpcenable/admin.css" in page and 'class="rpcenable-list"' in page


# -- the dashboard -------------------------------------------------------------


def test_dashboard_shows_sub_millisecond_percentiles(site: Site) -> None:
    for duration in (0.30, 0.42, 0.55):
        site.insert(method="fast", duration_ms=duration)
    html = site.get("/admin/").get_data(as_text=True)
    assert _method_rows(html)["fast"][3:] == ["0.42", "0.54"]
    assert "0.42 / 0.54 ms" in html


def test_dashboard_counts_a_multicall_as_its_entries(site: Site) -> None:
    calls = [{"methodName": "echo", "params": [str(i)]} for i in range(3)]
    calls.append({"methodName": "no.such.method", "params": []})
    results = site.post("system.multicall", calls)
    assert len(results) == 4
    # A multicall refused as a whole ran nothing: it is one failed call.
    assert isinstance(site.post("system.multicall", "not an array"), xmlrpc.client.Fault)
    assert len(site.rows()) == 6  # two envelopes, four entries: all logged
    html = site.get("/admin/").get_data(as_text=True)
    rows = _method_rows(html)
    assert rows["echo"][:2] == ["3", "0"]
    assert rows["no.such.method"][:2] == ["1", "1"]
    assert rows["system.multicall"][:2] == ["1", "1"]
    assert re.search(r'rpcenable-calls">\s*5\s*<', html)
    assert 'data-total="5"' in html


def test_dashboard_counts_a_json_rpc_batch_as_its_members(site: Site) -> None:
    batch = [{"jsonrpc": "2.0", "method": "echo", "params": [str(i)], "id": i} for i in range(3)]
    response = site.app.test_client().post("/rpc/", json=batch)
    assert response.status_code == 200 and len(response.get_json()) == 3
    assert len(site.rows()) == 4  # the batch's envelope and its three members
    html = site.get("/admin/").get_data(as_text=True)
    rows = _method_rows(html)
    assert rows["echo"][:2] == ["3", "0"]
    assert "rpc.batch" not in rows
    assert 'data-total="3"' in html


def test_dashboard_method_names_link_to_their_calls(site: Site) -> None:
    site.post("echo", "a")
    site.post("echo", "b")
    site.post("system.listMethods")
    html = site.get("/admin/").get_data(as_text=True)
    links = {
        name: url.replace("&amp;", "&")
        for url, name in re.findall(
            r'<a class="rpcenable-method" href="([^"]+)"[^>]*><code>([^<]+)</code></a>', html
        )
    }
    assert set(links) == {"echo", "system.listMethods"}
    listing = site.get(links["echo"])
    assert listing.status_code == 200
    text = listing.get_data(as_text=True)
    methods = re.findall(r'<td class="col-method">\s*([^<\s]+)', text)
    assert methods == ["echo", "echo"]


# -- what scheme-v2 calls leave in the log ------------------------------------


def test_v2_signed_call_of_a_public_method_names_the_user(site: Site) -> None:
    key = site.add_user("alice")
    assert site.post_v2("alice", key, "echo", "hi") == "hi"
    assert site.post_v2("alice", key, "auth_echo", "hi") == "alice: hi"
    assert [(row.method, row.username) for row in site.rows()] == [
        ("echo", "alice"),
        ("auth_echo", "alice"),
    ]


def test_failed_v2_authentication_is_logged_under_the_method_called(site: Site) -> None:
    site.add_user("alice")
    fault = site.post_v2("alice", "not-the-key", "auth_echo", "hi")
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == 406
    # A body that is not XML-RPC names no method: still "-".
    response = site.client.post("/rpc/", data=b"<junk/>", content_type="text/xml")
    assert response.status_code == 200
    rows = site.rows()
    assert [(row.method, row.fault_code, row.username) for row in rows] == [
        ("auth_echo", 406, None),
        ("-", -32600, None),
    ]
    dashboard = _method_rows(site.get("/admin/").get_data(as_text=True))
    assert dashboard["auth_echo"][:3] == ["1", "1", "100.0 %"]


# -- pages that explain the setup ---------------------------------------------


def test_403_page_names_the_setting_and_its_environment_variable(tmp_path: Path) -> None:
    closed = Site(tmp_path / "closed", RPCENABLE_ADMIN_USERNAME=None,
                  RPCENABLE_ADMIN_PASSWORD=None, SECRET_KEY="do-not-show-this-secret")
    try:
        response = closed.client.get("/admin/")
        assert response.status_code == 403
        text = response.get_data(as_text=True)
        for name in ("RPCENABLE_ADMIN_USERNAME", "RPCENABLE_ADMIN_PASSWORD",
                     "FLASK_RPCENABLE_ADMIN_USERNAME", "FLASK_RPCENABLE_ADMIN_PASSWORD",
                     "from_prefixed_env", "RPCENABLE_ADMIN_ACCESS"):
            assert name in text, name
        assert "do-not-show-this-secret" not in text
    finally:
        closed.dispose()
    login = Site(tmp_path / "login")
    try:
        response = login.client.get("/admin/", headers=basic_auth(USER, "wrong"))
        assert response.status_code == 401
        assert PASSWORD not in response.get_data(as_text=True)
    finally:
        login.dispose()


def test_api_users_page_without_a_secret_key_says_what_to_set(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        # Setting up without a secret may warn (not this test's subject).
        warnings.simplefilter("ignore")
        bare = Site(tmp_path / "bare", SECRET_KEY=None)
    try:
        for path in ("/admin/api-users/", "/admin/api-users/new/"):
            response = bare.get(path)
            assert response.status_code == 503, path
            text = response.get_data(as_text=True)
            assert "SECRET_KEY" in text and "FLASK_SECRET_KEY" in text
            assert "RPCENABLE_SECRET_KEY" in text
        # Pages without forms keep working.
        for path in ("/admin/", "/admin/incoming-calls/", "/admin/outgoing-calls/"):
            assert bare.get(path).status_code == 200, path
    finally:
        bare.dispose()


def test_admin_keeps_its_public_names() -> None:
    import flask_rpcenable.admin as admin

    for name in admin.__all__:
        assert hasattr(admin, name), name


# -- in a real browser ---------------------------------------------------------




def test_call_list_layout_in_chromium(site: Site, serve: Any, browser: Any) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    params = '[{"customer": "Jane Example", "items": [' + ", ".join(
        f'{{"sku": "A-{i}", "qty": {i}}}' for i in range(20)
    ) + "]}]"
    for i in range(40):
        site.insert(method="orders.create", params=params, result='{"order": 1234}',
                    created_at=now - datetime.timedelta(minutes=i), username="shop-frontend",
                    remote_addr="2001:db8::42", duration_ms=12.5)
    server = serve(site.app)
    width, height = 1600, 900
    context = browser.new_context(
        http_credentials={"username": USER, "password": PASSWORD},
        viewport={"width": width, "height": height},
    )
    try:
        page = context.new_page()
        response = page.goto(f"{server.url}/admin/incoming-calls/")
        assert response is not None and response.status == 200
        table = page.locator("table.model-list").bounding_box()
        assert table is not None and table["width"] >= 0.9 * width, table
        # No horizontal scrolling: long params are cut, not pushed off the page.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        time_cell = page.locator("td.col-created_at").first
        line_height = time_cell.evaluate(
            "el => parseFloat(getComputedStyle(el).fontSize) * 1.6"
        )
        box = time_cell.bounding_box()
        assert box is not None
        padding = time_cell.evaluate(
            "el => parseFloat(getComputedStyle(el).paddingTop)"
            " + parseFloat(getComputedStyle(el).paddingBottom)"
        )
        assert box["height"] - padding <= line_height, "the time wraps"
        rows = page.evaluate(
            f"[...document.querySelectorAll('table.model-list tbody tr')]"
            f".filter(tr => tr.getBoundingClientRect().bottom <= {height}).length"
        )
        assert rows >= 14, rows
        assert _rightmost_column_edge(page) <= width, "a column is cut at the right edge"
        # A narrower window: still one line per time, every column on screen,
        # previews cut with an ellipsis.
        # (Narrower than that, Flask-Admin's table scrolls sideways in its box.)
        for narrow in (1280, 1200, 1000):
            page.set_viewport_size({"width": narrow, "height": height})
            box = page.locator("td.col-created_at").first.bounding_box()
            assert box is not None and box["height"] - padding <= line_height, narrow
            if narrow < 1200:
                continue
            assert _rightmost_column_edge(page) <= narrow, narrow
            assert page.locator("td.col-result").first.is_visible()
            params_cell = page.locator("td.col-params").first
            assert params_cell.evaluate("el => el.scrollWidth > el.clientWidth")  # cut
    finally:
        context.close()


def _rightmost_column_edge(page: Any) -> float:
    """The right edge of the widest-reaching list cell, in CSS pixels.

    Flask-Admin wraps the table in ``.table-responsive`` (it scrolls on its
    own), so the document never gets wider: measure the cells themselves.
    """
    return float(page.evaluate(
        "Math.max(...[...document.querySelectorAll('table.model-list th, table.model-list td')]"
        ".map(el => el.getBoundingClientRect().right))"
    ))
