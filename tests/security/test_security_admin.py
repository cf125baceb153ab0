"""Security of the admin: stored XSS, access to every URL, CSRF, redirects, bad input."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from security_helpers import (
    APP_SECRET,
    RAW_MARKUP,
    XSS,
    SecApp,
    basic,
    csrf_token,
    make_sec_app,
)


@pytest.fixture
def sec(tmp_path: Path) -> SecApp:
    return make_sec_app(tmp_path)


def _pages(sec: SecApp) -> list[str]:
    pages = ["/admin/", "/admin/incoming-calls/", "/admin/outgoing-calls/",
             "/admin/api-users/", "/admin/background-jobs/"]
    for name, view in (("IncomingCall", "incoming-calls"), ("BackgroundJob", "background-jobs"),
                       ("APIUser", "api-users")):
        pages += [f"/admin/{view}/details/?id={row.id}" for row in sec.rows(name)]
    return pages


def _assert_escaped(sec: SecApp, client: Any, path: str) -> str:
    response = client.get(path, headers=basic())
    assert response.status_code == 200, path
    html = response.get_data(as_text=True)
    match = RAW_MARKUP.search(html)
    assert match is None, f"{path}: unescaped markup {html[match.start() - 80:match.end()]!r}"
    return html


def test_stored_xss_in_call_log_jobs_and_users_is_escaped(sec: SecApp) -> None:
    for text in XSS:
        sec.call("echo", text)
        sec.call("fail", text)  # the fault string is the payload
        sec.call("boom", text)  # the traceback holds it
        sec.call("take", {text: [text], "x": text})  # struct member names too
        key = sec.add_user(text)  # usernames
        assert sec.call("whoami", *sec.v1_args(text, key)) == text
        with sec.app.app_context():
            sec.job(text)
    rows = sec.rows()
    assert any(XSS[0] in (row.fault_string or "") for row in rows)
    assert any(XSS[1] == row.username for row in rows)
    assert any(XSS[3] in (row.traceback or "") for row in rows)
    assert any(XSS[4] in (row.error or "") for row in sec.rows("BackgroundJob"))
    client = sec.client
    pages = _pages(sec)
    assert len(pages) >= 40
    seen_escaped = 0
    for path in pages:
        html = _assert_escaped(sec, client, path)
        seen_escaped += "&lt;script&gt;alert" in html
    assert seen_escaped > 10  # the payloads are shown, escaped
    for query in ("?search=%3Cscript%3Ealert(1)%3C/script%3E",
                  "?flt0_0=%22%3E%3Cimg%20src=x%20onerror=alert(2)%3E"):
        _assert_escaped(sec, client, "/admin/incoming-calls/" + query)


def test_dashboard_chart_and_method_table_hold_no_markup(sec: SecApp) -> None:
    for text in XSS:
        sec.call("fail", text)
    # method names are restricted on the wire; a rejected request is "-"
    sec.post("<methodCall><methodName><script>x</script></methodName></methodCall>")
    html = _assert_escaped(sec, sec.client, "/admin/")
    svg = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(svg) == 2
    for chart in svg:
        assert "<script" not in chart and "onload" not in chart and "href" not in chart
    assert "<script>x" not in html


def test_flash_of_new_key_escapes_the_username(sec: SecApp) -> None:
    client = sec.client
    token = csrf_token(client.get("/admin/api-users/new/", headers=basic()).get_data(True))
    response = client.post(
        "/admin/api-users/new/",
        data={"username": XSS[1], "active": "y", "csrf_token": token},
        headers=basic(),
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "API key of &#34;&gt;&lt;img" in html
    assert RAW_MARKUP.search(html) is None


def test_every_admin_url_needs_credentials(tmp_path: Path) -> None:
    # Hundreds of wrong logins from one address: without the login throttle
    # (tested in test_admin_hardening.py), which would answer 429 after ten.
    sec = make_sec_app(tmp_path, RPCENABLE_ADMIN_LOGIN_RATE=None)
    client = sec.client
    checked = 0
    for rule in sec.app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or rule.endpoint.endswith(".static"):
            continue
        path = rule.rule.replace("<export_type>", "csv")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for headers in ({}, basic("admin", "wrong"), basic("", ""),
                            {"Authorization": "Basic !!!"}, {"Authorization": "Basic"}):
                response = client.open(path + "?id=1", method=method, headers=headers,
                                       data={"rowid": "1", "action": "deactivate"})
                assert response.status_code == 401, (path, method, headers)
                assert b"API key" not in response.data
                checked += 1
    assert checked >= 100


def test_admin_static_files_are_public_but_harmless(sec: SecApp) -> None:
    client = sec.client
    with client.get("/admin/_rpcenable/static/rpcenable/admin.css") as response:
        assert response.status_code == 200
    for path in ("/admin/_rpcenable/static/../auth.py",
                 "/admin/_rpcenable/static/%2e%2e/auth.py",
                 "/admin/_rpcenable/static/..%2fauth.py",
                 "/admin/static/../../flask_rpcenable/auth.py"):
        with client.get(path) as response:
            assert response.status_code == 404, path
            assert b"HMAC" not in response.data


def test_posts_without_csrf_token_change_nothing(sec: SecApp) -> None:
    sec.add_user("victim")
    (user,) = sec.rows("APIUser")
    client = sec.client
    client.get("/admin/api-users/", headers=basic())  # a session exists
    attempts = [
        ("/admin/api-users/new/", {"username": "intruder", "active": "y"}),
        ("/admin/api-users/action/", {"action": "deactivate", "rowid": str(user.id)}),
        ("/admin/api-users/action/", {"action": "regenerate_key", "rowid": str(user.id)}),
        ("/admin/api-users/delete/", {"id": str(user.id)}),
        (f"/admin/api-users/edit/?id={user.id}", {"username": "renamed", "active": ""}),
    ]
    for path, data in attempts:
        for token in (None, "", "forged-token"):
            form = dict(data) if token is None else {**data, "csrf_token": token}
            response = client.post(path, data=form, headers=basic())
            # Flask-Admin answers a refused form with the form again (new,
            # edit) or a redirect to the list (action, delete).
            form_page = "/new/" in path or "/edit/" in path
            assert response.status_code == (200 if form_page else 302), path
            assert b"New API key" not in response.data
    (after,) = sec.rows("APIUser")
    assert (after.username, after.active) == ("victim", True)
    assert after.api_key_encrypted == user.api_key_encrypted


def test_a_valid_csrf_token_works(sec: SecApp) -> None:
    sec.add_user("victim")
    (user,) = sec.rows("APIUser")
    client = sec.client
    token = csrf_token(client.get("/admin/api-users/", headers=basic()).get_data(True))
    response = client.post("/admin/api-users/action/", headers=basic(),
                           data={"action": "deactivate", "rowid": str(user.id),
                                 "csrf_token": token})
    assert response.status_code == 302
    assert sec.rows("APIUser")[0].active is False


#: Return URLs that must never become a redirect or a link: other hosts, schemes
#: (Flask-Admin 2.2.1's own check lets ``http:evil.example`` through and then
#: redirects to ``http:///evil.example``), and what browsers "fix" into them.
EVIL_TARGETS = (
    "https://evil.example/", "//evil.example/", "/\\evil.example/", "\\\\evil.example",
    "javascript:alert(1)", "https:evil.example", "http:evil.example", "http:/evil.example",
    "HTTP:evil.example", "/\t/evil.example", "/%09/evil.example", " //evil.example",
)


def _assert_local(location: str) -> None:
    assert "evil" not in location and "javascript" not in location, location
    assert location.startswith("/admin/"), location
    assert not location.startswith(("//", "/\\")), location


def _hrefs(html: str) -> list[str]:
    return re.findall(r'(?:href|action|src)="([^"]*)"', html)


def test_no_open_redirect_or_link_from_create(sec: SecApp) -> None:
    # A created user is answered with the one-time key page (200, no redirect);
    # its only way on is a local link, whatever ``?url=`` said.
    client = sec.client
    for number, target in enumerate(EVIL_TARGETS):
        form_page = client.get("/admin/api-users/new/?url=" + target, headers=basic())
        html = form_page.get_data(as_text=True)
        assert "evil.example" not in html and "javascript:alert" not in html, target
        token = csrf_token(html)
        response = client.post(
            "/admin/api-users/new/?url=" + target,
            data={"username": f"user{number}", "active": "y", "csrf_token": token,
                  "url": target},
            headers=basic(),
        )
        assert response.status_code == 200, target
        assert "Location" not in response.headers
        html = response.get_data(as_text=True)
        assert f"API key of user{number}" in html
        assert "evil.example" not in html and "javascript:alert" not in html, target
        assert 'href="/admin/api-users/">Back to the API users' in html
        for link in _hrefs(html):
            assert link.startswith(("/", "#")) and not link.startswith(("//", "/\\")), link
        # a failed create shows the form again: its Cancel link is local too
        failed = client.post(
            "/admin/api-users/new/?url=" + target,
            data={"username": "", "active": "y", "csrf_token": token},
            headers=basic(),
        )
        assert failed.status_code == 200
        html = failed.get_data(as_text=True)
        assert "evil.example" not in html and "javascript:alert" not in html, target
    assert len(sec.rows("APIUser")) == len(EVIL_TARGETS)


def _redirecting_requests(sec: SecApp, client: Any) -> list[tuple[str, str, dict[str, str]]]:
    """Requests that end in a redirect to the ``url`` argument: saves, deletes, actions."""
    sec.call("echo", "x")
    with sec.app.app_context():
        sec.job("x")
    for name in ("ed", "del", "act"):
        sec.add_user(name)
    users = {row.username: row.id for row in sec.rows("APIUser")}
    token = csrf_token(client.get("/admin/api-users/", headers=basic()).get_data(True))
    call_id = sec.rows()[0].id
    return [
        ("POST", f"/admin/api-users/edit/?id={users['ed']}",
         {"username": "ed", "active": "y", "csrf_token": token}),
        ("POST", "/admin/api-users/delete/", {"id": str(users["del"]), "csrf_token": token}),
        ("POST", "/admin/api-users/action/",
         {"action": "deactivate", "rowid": str(users["act"]), "csrf_token": token}),
        ("POST", "/admin/api-users/action/",
         {"action": "activate", "rowid": str(users["act"]), "csrf_token": token}),
        ("GET", "/admin/api-users/edit/?id=999999", {}),  # no such row
        ("GET", "/admin/incoming-calls/details/", {}),  # no id
        ("GET", f"/admin/incoming-calls/edit/?id={call_id}", {}),  # read-only view
        ("POST", "/admin/incoming-calls/delete/", {"id": str(call_id), "csrf_token": token}),
        ("POST", "/admin/outgoing-calls/action/", {"action": "x", "csrf_token": token}),
        ("GET", "/admin/background-jobs/details/?id=999999", {}),
        ("POST", "/admin/background-jobs/delete/", {"id": "1", "csrf_token": token}),
        ("POST", "/admin/background-jobs/action/", {"action": "x", "csrf_token": token}),
    ]


def test_no_open_redirect_after_edit_delete_and_actions(sec: SecApp) -> None:
    client = sec.client
    requests = _redirecting_requests(sec, client)
    checked = 0
    for method, path, data in requests:
        for target in EVIL_TARGETS:
            joiner = "&" if "?" in path else "?"
            for in_query in (True, False):  # the url argument in the query or the form
                url = path + joiner + "url=" + target if in_query else path
                form = dict(data) if in_query else {**data, "url": unquote(target)}
                if method == "GET" and not in_query:
                    continue
                response = client.open(url, method=method, data=form or None,
                                       headers=basic())
                assert response.status_code == 302, (method, path, target)
                _assert_local(response.headers["Location"])
                checked += 1
    assert checked >= 200
    # the saves, deletes and actions were done all the same
    users = {row.username: row for row in sec.rows("APIUser")}
    assert set(users) == {"ed", "act"}
    assert users["act"].active is True
    assert len(sec.rows()) >= 1  # read-only: the call log row is still there


def test_a_local_return_url_is_still_followed(sec: SecApp) -> None:
    client = sec.client
    sec.add_user("ed")
    (user,) = sec.rows("APIUser")
    token = csrf_token(client.get("/admin/api-users/", headers=basic()).get_data(True))
    local = "/admin/api-users/?search=ed"
    response = client.post(
        f"/admin/api-users/edit/?id={user.id}&url=/admin/api-users/%3Fsearch%3Ded",
        data={"username": "edna", "active": "y", "csrf_token": token},
        headers=basic(),
    )
    assert response.status_code == 302
    assert response.headers["Location"] == local
    assert sec.rows("APIUser")[0].username == "edna"


def test_admin_pages_never_show_secrets(sec: SecApp) -> None:
    key = sec.add_user("alice")
    args = sec.v1_args("alice")
    assert sec.call("whoami", *args) == "alice"
    sec.call("take", {"password": "hunter2-pw", "api_key": key})
    with sec.app.app_context():
        sec.job("x", api_key=key)
    client = sec.client
    (user,) = sec.rows("APIUser")
    secrets = [key, args[3], args[0], APP_SECRET, "hunter2-pw", user.api_key_encrypted]
    for path in _pages(sec) + ["/admin/api-users/edit/?id=1"]:
        html = client.get(path, headers=basic()).get_data(as_text=True)
        for secret in secrets:
            assert secret not in html, (path, secret[:6])
    for view in ("incoming-calls", "outgoing-calls", "api-users", "background-jobs"):
        response = client.get(f"/admin/{view}/export/csv/", headers=basic())
        assert response.status_code == 302, view  # exports are off: back to the list
        assert not any(secret.encode() in response.data for secret in secrets)


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("?page=99999999999999999999", 200, None),  # clamped: an empty page
        ("?page=-99999999999999999999", 200, None),
        ("?flt0_7=99999999999999999999", 400, "could not be read"),
        ("?flt0_12=1,99999999999999999999", 400, "could not be read"),
        ("?flt0_7=-99999999999999999999&search=x", 400, "could not be read"),
        ("?search=" + "a b " * 600, 200, "Only the first 10 words"),
        ("?search=" + "a" * 5000, 200, "Only the first 10 words"),
        ("?" + "&".join(f"flt{i}_0=a" for i in range(300)), 200, "Only the first 20 filters"),
    ],
    ids=["huge-page", "huge-negative-page", "huge-int-filter", "huge-int-in-list",
         "huge-negative-int-filter", "search-with-1200-words", "search-of-5000-chars",
         "300-filters"],
)
def test_admin_list_bad_query_is_not_a_500(
    sec: SecApp, query: str, status: int, message: str | None
) -> None:
    sec.call("echo", "x")
    sec.app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
    client = sec.client
    response = client.get("/admin/incoming-calls/" + query, headers=basic())
    assert response.status_code == status
    html = response.get_data(as_text=True)
    if message is not None:
        assert message in html
    if status == 400:
        assert "echo" not in html  # an empty list
    # the next request works: the failed query left no broken transaction behind
    again = client.get("/admin/incoming-calls/", headers=basic())
    assert again.status_code == 200
    assert "echo" in again.get_data(as_text=True)


def test_admin_list_search_is_cut_not_dropped(sec: SecApp) -> None:
    sec.call("echo", "needle-q7")
    sec.call("echo", "haystack-k3")
    html = sec.client.get("/admin/incoming-calls/?search=" + "needle-q7 " * 300,
                          headers=basic()).get_data(as_text=True)
    assert "Only the first 10 words" in html
    assert "needle-q7" in html and "haystack-k3" not in html
    # a short search with extra blanks is used as is, with no message
    html = sec.client.get("/admin/incoming-calls/?search=haystack-k3%20%20",
                          headers=basic()).get_data(as_text=True)
    assert "Only the first" not in html
    assert "haystack-k3" in html and "needle-q7" not in html


def test_admin_list_bad_query_on_postgresql(tmp_path: Path) -> None:
    from log_app import fresh_pg_database

    with fresh_pg_database() as url:
        sec = make_sec_app(tmp_path, SQLALCHEMY_DATABASE_URI=url)
        try:
            sec.call("echo", "x")
            sec.app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
            client = sec.client
            # PostgreSQL compares the column with a numeric: no error, no row
            for query in ("?flt0_7=99999999999999999999", "?flt0_12=1,99999999999999999999",
                          "?page=99999999999999999999"):
                response = client.get("/admin/incoming-calls/" + query, headers=basic())
                assert response.status_code in (200, 400), query
                assert ">echo<" not in response.get_data(as_text=True).replace(" ", "")
            again = client.get("/admin/incoming-calls/?search=" + "echo " * 600,
                               headers=basic())
            assert again.status_code == 200
            html = again.get_data(as_text=True)
            assert "Only the first 10 words" in html and "could not be read" not in html
            assert ">echo<" in html.replace(" ", "").replace("\n", "")
        finally:
            with sec.app.app_context():
                sec.db.engine.dispose()


@pytest.mark.parametrize("token", ["\u00ff\u00fe", "YWRtaW46\u00e9", "\u2603:\u2603"])
def test_non_ascii_basic_token_is_401_not_500(sec: SecApp, token: str) -> None:
    # Werkzeug 3.1's request.authorization raises ValueError for these
    sec.app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
    client = sec.client
    for method, path in (("GET", "/admin/"), ("GET", "/admin/api-users/"),
                         ("POST", "/admin/api-users/new/")):
        response = client.open(path, method=method, headers={"Authorization": "Basic " + token},
                               data={"username": "intruder"})
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert sec.rows("APIUser") == []
    assert client.get("/admin/", headers=basic()).status_code == 200
