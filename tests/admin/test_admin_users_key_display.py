"""A new API key is shown once, in the answer to the POST that made it, and
never travels in the session cookie (signed, not encrypted)."""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from auth_helpers import AuthEnv, fault_of, make_env, v1

ADMIN = {
    "RPCENABLE_ADMIN_ENABLED": True,
    "RPCENABLE_ADMIN_USERNAME": "admin",
    "RPCENABLE_ADMIN_PASSWORD": "pw",
}
AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()}
KEY = r"[A-Za-z0-9_-]{32,}"


class Flow:
    """A test client that keeps every Set-Cookie header it was sent."""

    def __init__(self, env: AuthEnv) -> None:
        self.env = env
        self.client = env.app.test_client()
        self.set_cookies: list[str] = []

    def open(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.open(path, method=method, headers=AUTH, **kwargs)
        self.set_cookies += response.headers.getlist("Set-Cookie")
        return response

    def csrf(self, path: str = "/admin/api-users/new/") -> str:
        html = self.open("GET", path).get_data(as_text=True)
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
        assert match, "no CSRF token in the page"
        return match.group(1)

    def cookie_texts(self) -> list[str]:
        """Each Set-Cookie header, its value decoded as Flask wrote it, and the session."""
        texts: list[str] = []
        serializer = self.env.app.session_interface.get_signing_serializer(  # type: ignore[attr-defined]
            self.env.app
        )
        for header in self.set_cookies:
            texts.append(header)
            value = header.split(";", 1)[0].split("=", 1)[1]
            if not value:
                continue
            texts.append(raw_payload(value))
            texts.append(repr(serializer.loads(value)))
        cookie = self.client.get_cookie("session")
        if cookie is not None and cookie.value:
            texts.append(repr(serializer.loads(cookie.value)))
        return texts


def raw_payload(value: str) -> str:
    """The payload of an itsdangerous token, decoded by hand (base64, maybe zlib)."""
    compressed = value.startswith(".")
    payload = value.lstrip(".").split(".", 1)[0]
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if compressed:
        data = zlib.decompress(data)
    return data.decode("utf-8")


def shown_keys(html: str) -> dict[str, str]:
    return dict(re.findall(rf"API key of (\w+): <code[^>]*>({KEY})</code>", html))


def assert_key_page(response: Any, keys: dict[str, str]) -> None:
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert "no-store" in response.headers["Cache-Control"]
    html = response.get_data(as_text=True)
    assert shown_keys(html) == keys
    for key in keys.values():
        assert html.count(key) == 1
    assert 'href="/admin/api-users/"' in html


def assert_not_in_cookies(flow: Flow, *keys: str) -> None:
    texts = flow.cookie_texts()
    assert flow.set_cookies, "the flow set no cookie: the check would prove nothing"
    assert any("_flashes" in text or "csrf" in text for text in texts)
    for key in keys:
        for text in texts:
            assert key not in text


@pytest.fixture
def env(tmp_path: Path, serve: Callable[..., Any]) -> AuthEnv:
    return make_env(tmp_path, serve=serve, **ADMIN)


def test_created_key_is_shown_once_and_never_stored_in_the_cookie(env: AuthEnv) -> None:
    flow = Flow(env)
    created = flow.open(
        "POST", "/admin/api-users/new/",
        data={"username": "hana", "active": "y", "csrf_token": flow.csrf()},
    )
    key = shown_keys(created.get_data(as_text=True))["hana"]
    assert_key_page(created, {"hana": key})
    assert "API user created" in created.get_data(as_text=True)
    assert env.proxy().auth_echo(*v1("hana", key)) == "User hana says: "

    # the next pages do not show it again
    for path in ("/admin/api-users/", "/admin/api-users/new/", "/admin/"):
        assert key not in flow.open("GET", path).get_data(as_text=True)
    assert_not_in_cookies(flow, key)


def test_regenerated_keys_are_shown_once_and_never_stored_in_the_cookie(env: AuthEnv) -> None:
    old = {name: env.add_user(name) for name in ("ivan", "jade", "kim")}
    ids = {name: str(env.user(name).id) for name in old}
    flow = Flow(env)
    token = flow.csrf("/admin/api-users/")
    response = flow.open(
        "POST", "/admin/api-users/action/",
        data={"action": "regenerate_key", "rowid": [ids["ivan"], ids["jade"]],
              "csrf_token": token},
    )
    new = shown_keys(response.get_data(as_text=True))
    assert set(new) == {"ivan", "jade"}
    assert_key_page(response, new)
    assert "New API key of ivan" in response.get_data(as_text=True)
    proxy = env.proxy()
    for name in ("ivan", "jade"):
        assert new[name] != old[name]
        assert proxy.auth_echo(*v1(name, new[name]), "x") == f"User {name} says: x"
        assert fault_of(lambda n=name: proxy.auth_echo(*v1(n, old[n]))).faultCode == 406
    # kim was not selected: her key still works
    assert proxy.auth_echo(*v1("kim", old["kim"])) == "User kim says: "
    listing = flow.open("GET", "/admin/api-users/").get_data(as_text=True)
    assert all(key not in listing for key in new.values())
    assert_not_in_cookies(flow, *new.values())


@pytest.mark.parametrize("button", ["_add_another", "_continue_editing"])
def test_every_save_button_shows_the_key_page(env: AuthEnv, button: str) -> None:
    flow = Flow(env)
    created = flow.open(
        "POST", "/admin/api-users/new/?url=/admin/api-users/",
        data={"username": "lena", "active": "y", "csrf_token": flow.csrf(), button: "1"},
    )
    key = shown_keys(created.get_data(as_text=True))["lena"]
    assert_key_page(created, {"lena": key})
    assert env.proxy().auth_echo(*v1("lena", key)) == "User lena says: "
    assert_not_in_cookies(flow, key)


def test_failed_create_shows_no_key(env: AuthEnv) -> None:
    env.add_user("mona")
    stored = env.user("mona").api_key_encrypted
    flow = Flow(env)
    response = flow.open(
        "POST", "/admin/api-users/new/",
        data={"username": "mona", "active": "y", "csrf_token": flow.csrf()},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "API key of" not in html and not re.search(rf"<code[^>]*>{KEY}</code>", html)
    assert "Failed to create record" in html or "already" in html.lower()
    assert env.user("mona").api_key_encrypted == stored
    # the next, good create shows only its own key
    created = flow.open(
        "POST", "/admin/api-users/new/",
        data={"username": "nora", "active": "y", "csrf_token": flow.csrf()},
    )
    assert set(shown_keys(created.get_data(as_text=True))) == {"nora"}


def test_regenerate_with_no_user_found_redirects_without_a_key(env: AuthEnv) -> None:
    flow = Flow(env)
    token = flow.csrf("/admin/api-users/")
    response = flow.open(
        "POST", "/admin/api-users/action/",
        data={"action": "regenerate_key", "rowid": "9999", "csrf_token": token},
    )
    assert response.status_code == 302
    assert "No API user selected" in flow.open("GET", "/admin/api-users/").get_data(as_text=True)
