"""Issue 14, item 3: the admin cannot be framed, and failed logins are throttled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_admin import Admin
from flask_sqlalchemy import SQLAlchemy
from live import basic_auth, build_app
from security_helpers import SecApp, basic, make_sec_app

from flask_rpcenable import RPCEnable
from flask_rpcenable.admin.headers import AdminHeaders


@pytest.fixture
def sec(tmp_path: Path) -> SecApp:
    return make_sec_app(tmp_path)


def assert_unframeable(response: Any) -> None:
    headers = response.headers
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


PAGES = [
    "/admin/",
    "/admin/incoming-calls/",
    "/admin/outgoing-calls/",
    "/admin/api-users/",
    "/admin/api-users/new/",
    "/admin/background-jobs/",
    "/admin/_rpcenable/static/rpcenable/admin.css",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_admin_page_has_the_headers(sec: SecApp, path: str) -> None:
    response = sec.client.get(path, headers=basic())
    response.close()
    assert response.status_code == 200, path
    assert_unframeable(response)


def test_login_and_denied_pages_have_the_headers(sec: SecApp, tmp_path: Path) -> None:
    assert_unframeable(sec.client.get("/admin/"))  # 401, no credentials
    wrong = sec.client.get("/admin/api-users/", headers=basic(password="wrong"))
    assert wrong.status_code == 401
    assert_unframeable(wrong)
    closed = build_app(tmp_path / "closed")
    RPCEnable().init_app(closed)
    denied = closed.test_client().get("/admin/")
    assert denied.status_code == 403  # no access configured
    assert_unframeable(denied)


def test_rpc_endpoint_is_left_alone(sec: SecApp) -> None:
    response = sec.post(b"<?xml version='1.0'?><methodCall><methodName>echo</methodName>"
                        b"<params><param><value>x</value></param></params></methodCall>")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response.headers


def test_an_apps_own_csp_gets_frame_ancestors(tmp_path: Path) -> None:
    app = build_app(tmp_path, RPCENABLE_ADMIN_USERNAME="a", RPCENABLE_ADMIN_PASSWORD="b")

    @app.after_request
    def csp(response: Any) -> Any:
        response.headers["Content-Security-Policy"] = "default-src 'self'"
        return response

    RPCEnable().init_app(app)
    response = app.test_client().get("/admin/", headers=basic_auth("a", "b"))
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'self'; frame-ancestors 'none'"
    )


def test_inside_an_apps_own_admin(tmp_path: Path) -> None:
    app = build_app(tmp_path, RPCENABLE_ADMIN_USERNAME="a", RPCENABLE_ADMIN_PASSWORD="b")
    db = SQLAlchemy()
    db.init_app(app)
    Admin(app, name="Mine", url="/backoffice")
    RPCEnable().init_app(app, db=db)
    response = app.test_client().get("/backoffice/rpc-dashboard/", headers=basic_auth("a", "b"))
    assert response.status_code == 200
    assert_unframeable(response)


# -- throttled logins ------------------------------------------------------------------


def _wrong(client: Any, address: str = "203.0.113.7") -> Any:
    return client.get("/admin/", headers=basic(password="guess"),
                      environ_base={"REMOTE_ADDR": address})


def test_eleventh_failure_in_a_minute_is_429(sec: SecApp) -> None:
    client = sec.client
    for _ in range(10):
        assert _wrong(client).status_code == 401
    blocked = _wrong(client)
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 61
    assert_unframeable(blocked)
    # Even the right password waits now: guessing on does not help.
    right = client.get("/admin/", headers=basic(), environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert right.status_code == 429
    # Another address is not affected.
    other = client.get("/admin/", headers=basic(), environ_base={"REMOTE_ADDR": "198.51.100.1"})
    assert other.status_code == 200


def test_successes_and_missing_credentials_do_not_count(sec: SecApp) -> None:
    client = sec.client
    for _ in range(30):
        assert client.get("/admin/", headers=basic()).status_code == 200
        assert client.get("/admin/").status_code == 401
    assert _wrong(client, "127.0.0.1").status_code == 401


def test_rate_is_a_setting(tmp_path: Path) -> None:
    sec = make_sec_app(tmp_path, RPCENABLE_ADMIN_LOGIN_RATE="2/hour")
    assert [_wrong(sec.client).status_code for _ in range(3)] == [401, 401, 429]
    assert int(_wrong(sec.client).headers["Retry-After"]) > 3000


def test_throttle_can_be_turned_off(tmp_path: Path) -> None:
    sec = make_sec_app(tmp_path, RPCENABLE_ADMIN_LOGIN_RATE=None)
    assert {_wrong(sec.client).status_code for _ in range(15)} == {401}


def test_bad_rate_is_refused_at_init(make_app: Any) -> None:
    app: Flask = make_app(RPCENABLE_ADMIN_LOGIN_RATE="lots", RPCENABLE_ADMIN_USERNAME="a",
                          RPCENABLE_ADMIN_PASSWORD="b")
    with pytest.raises(RuntimeError, match="RPCENABLE_ADMIN_LOGIN_RATE"):
        RPCEnable().init_app(app)


def test_headers_cover_the_admin_subtree_and_nothing_else(sec: SecApp) -> None:
    # Answers Flask gives itself under the admin's URL: the redirect to the
    # trailing slash, a page that does not exist.
    for path in ["/admin", "/admin/no-such-page/"]:
        response = sec.client.get(path, headers=basic())
        assert response.status_code in (200, 308, 404), path
        assert_unframeable(response)
    # A path that only starts like the admin's is no admin page.
    other = sec.client.get("/administrator/")
    assert other.status_code == 404
    assert "X-Frame-Options" not in other.headers


def test_an_apps_own_security_headers_are_kept(tmp_path: Path) -> None:
    app = build_app(tmp_path, RPCENABLE_ADMIN_USERNAME="a", RPCENABLE_ADMIN_PASSWORD="b")

    @app.after_request
    def own(response: Any) -> Any:
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'self'"
        return response

    RPCEnable().init_app(app)
    response = app.test_client().get("/admin/", headers=basic_auth("a", "b"))
    assert response.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    own_csp = "default-src 'self'; frame-ancestors 'self'"
    assert response.headers["Content-Security-Policy"] == own_csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_paths_are_matched_as_flask_reads_them() -> None:
    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    wrapped = AdminHeaders(inner, "/admin/")
    for path, secured in [
        ("/admin/", True),
        ("//admin/users/", True),  # Flask's request.path is "/admin/users/"
        ("/admin", True),
        ("/adminx", False),
        ("/", False),
        ("", False),
    ]:
        sent: list[list[tuple[str, str]]] = []
        wrapped({"PATH_INFO": path}, lambda status, headers, *exc, out=sent: out.append(headers))
        names = {name for name, _ in sent[0]}
        assert ("X-Frame-Options" in names) is secured, path
