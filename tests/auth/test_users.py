"""API users: keys generated and encrypted at rest, secret rotation, a custom
user model, the ``flask rpc users`` commands and the admin page."""

from __future__ import annotations

import base64
import re
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from auth_helpers import AuthEnv, fault_of, make_env, new_app, v1
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from flask_rpcenable import RPCEnable
from flask_rpcenable.auth.users import (
    API_USER_TABLE,
    BaseAPIUser,
    create_api_user,
    decrypt_api_key,
    generate_api_key,
)

# -- a custom user model, as an app would define it -------------------------------

custom_db = SQLAlchemy()


class Partner(BaseAPIUser, custom_db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "test_partner"
    company: Mapped[str | None] = mapped_column(sa.String(100))


# -- keys -------------------------------------------------------------------------------


def test_generated_keys() -> None:
    keys = {generate_api_key() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        assert len(key) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", key)


def test_keys_are_encrypted_at_rest(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    key = env.add_user("alice")
    with env.app.app_context():
        stored = env.db.session.execute(
            sa.text(f"SELECT * FROM {API_USER_TABLE} WHERE username = 'alice'")
        ).mappings().one()
        for value in stored.values():
            assert key not in str(value)
        token = stored["api_key_encrypted"]
        assert token.startswith("gAAAAA")  # a Fernet token
        assert decrypt_api_key(token) == key
        user = env.db.session.execute(sa.select(env.model)).scalar_one()
        assert user.get_api_key() == key
        assert key not in repr(user) and token not in repr(user) and str(user) == "alice"


def test_no_secret_is_a_clear_error(tmp_path: Path, serve: Callable[..., Any]) -> None:
    env = make_env(tmp_path, serve=serve, SECRET_KEY=None)
    with env.app.app_context(), pytest.raises(RuntimeError, match="RPCENABLE_SECRET_KEY"):
        create_api_user(env.db, env.model, "alice")
    fault = fault_of(lambda: env.proxy().auth_echo(*v1("alice", "k")))
    assert fault.faultCode == -32400  # a system error: the server lacks its secret


def test_rpcenable_secret_key_wins_over_secret_key(tmp_path: Path) -> None:
    env = make_env(tmp_path, SECRET_KEY="flask", RPCENABLE_SECRET_KEY="ours")
    key = env.add_user("alice")
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    same_secret = make_env(tmp_path / "x", SECRET_KEY="other", RPCENABLE_SECRET_KEY="ours")
    with env.app.app_context():
        token = env.db.session.execute(sa.select(env.model.api_key_encrypted)).scalar_one()
    with same_secret.app.app_context():
        assert decrypt_api_key(token) == key
    # the app's SECRET_KEY was not used
    flask_only = make_env(tmp_path / "y", SECRET_KEY="flask")
    with flask_only.app.app_context(), pytest.raises(RuntimeError, match="FALLBACKS"):
        decrypt_api_key(token)


def test_secret_rotation_with_fallbacks_and_reencrypt(
    tmp_path: Path, serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    old = make_env(tmp_path, RPCENABLE_SECRET_KEY="old-secret")
    key = old.add_user("alice")

    # The new secret alone cannot read the old keys: the client sees the same
    # 406 as for any failed authentication (nothing tells it the user exists),
    # the operator an error in the log naming the cure.
    new_only = make_env(tmp_path, serve=serve, RPCENABLE_SECRET_KEY="new-secret")
    fault = fault_of(lambda: new_only.proxy().auth_echo(*v1("alice", key)))
    assert (fault.faultCode, fault.faultString) == (406, "Authentication failed")
    assert "RPCENABLE_SECRET_KEY_FALLBACKS" in caplog.text and "'alice'" in caplog.text

    rotating = make_env(
        tmp_path, serve=serve, RPCENABLE_SECRET_KEY="new-secret",
        RPCENABLE_SECRET_KEY_FALLBACKS=["old-secret"],
    )
    assert rotating.proxy().auth_echo(*v1("alice", key)) == "User alice says: "
    result = rotating.app.test_cli_runner().invoke(args=["rpc", "users", "reencrypt"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 1 API key(s)" in result.output

    assert new_only.proxy().auth_echo(*v1("alice", key)) == "User alice says: "


def test_flask_secret_key_fallbacks(tmp_path: Path) -> None:
    old = make_env(tmp_path, SECRET_KEY="one")
    key = old.add_user("alice")
    with old.app.app_context():
        token = old.db.session.execute(sa.select(old.model.api_key_encrypted)).scalar_one()
    (tmp_path / "r").mkdir()
    rotated = make_env(tmp_path / "r", SECRET_KEY="two", SECRET_KEY_FALLBACKS=["one"])
    with rotated.app.app_context():
        assert decrypt_api_key(token) == key


# -- a custom user model ------------------------------------------------------------


@pytest.mark.parametrize("as_path", [True, False])
def test_custom_user_model(tmp_path: Path, serve: Callable[..., Any], as_path: bool) -> None:
    app = new_app(tmp_path, RPCENABLE_USER_MODEL=f"{__name__}.Partner" if as_path else Partner)
    custom_db.init_app(app)
    rpc = RPCEnable()

    @rpc.register
    @rpc.auth
    def whoami(partner: Partner) -> str:
        return f"{partner.username} of {partner.company}"

    rpc.init_app(app, db=custom_db)
    state = rpc.state(app)
    assert state.models.APIUser is Partner
    assert API_USER_TABLE not in custom_db.metadata.tables
    with app.app_context():
        custom_db.create_all()
        partner, key = create_api_user(custom_db, Partner, "acme")
        partner.company = "ACME Corp"
        custom_db.session.commit()
        partner_id = partner.id
        _, inactive_key = create_api_user(custom_db, Partner, "gone", active=False)
    proxy = xmlrpc.client.ServerProxy(serve(app).url + "/rpc/")
    assert proxy.whoami(*v1("acme", key)) == "acme of ACME Corp"
    assert fault_of(lambda: proxy.whoami(*v1("gone", inactive_key))).faultCode == 406
    with app.app_context():
        assert custom_db.session.get(Partner, partner_id).last_login is not None


# -- the command line -------------------------------------------------------------------


def run(env: AuthEnv, *args: str) -> Any:
    return env.app.test_cli_runner().invoke(args=["rpc", "users", *args])


def key_in(output: str) -> str:
    match = re.search(r": ([A-Za-z0-9_-]{32,})\s*$", output, re.M)
    assert match, output
    return match.group(1)


def test_cli(tmp_path: Path, serve: Callable[..., Any]) -> None:
    env = make_env(tmp_path, serve=serve)
    proxy = env.proxy()

    created = run(env, "create", "erin")
    assert created.exit_code == 0, created.output
    key = key_in(created.output)
    assert created.output.count(key) == 1
    assert proxy.auth_echo(*v1("erin", key)) == "User erin says: "

    duplicate = run(env, "create", "erin")
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output

    run(env, "create", "--inactive", "frank")
    listing = run(env, "list")
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert lines[0].split() == ["USERNAME", "ACTIVE", "LAST", "LOGIN", "CREATED"]
    assert lines[1].startswith("erin") and " yes " in lines[1]
    assert lines[2].startswith("frank") and " no " in lines[2] and " - " in lines[2]
    with env.app.app_context():
        token = env.db.session.execute(
            sa.select(env.model.api_key_encrypted).where(env.model.username == "erin")
        ).scalar_one()
    assert key not in listing.output and token not in listing.output

    assert run(env, "deactivate", "erin").exit_code == 0
    assert fault_of(lambda: proxy.auth_echo(*v1("erin", key))).faultCode == 406
    assert run(env, "activate", "erin").exit_code == 0
    assert proxy.auth_echo(*v1("erin", key)) == "User erin says: "

    rotated = run(env, "rotate-key", "erin")
    assert rotated.exit_code == 0
    new_key = key_in(rotated.output)
    assert new_key != key
    assert fault_of(lambda: proxy.auth_echo(*v1("erin", key))).faultCode == 406
    assert proxy.auth_echo(*v1("erin", new_key)) == "User erin says: "

    for command in ("deactivate", "rotate-key"):
        missing = run(env, command, "nobody")
        assert missing.exit_code != 0 and "no API user named 'nobody'" in missing.output
    too_long = run(env, "create", "x" * 256)
    assert too_long.exit_code != 0 and "1 to 255 characters" in too_long.output


def test_cli_without_tables(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    with env.app.app_context():
        env.db.drop_all()
    result = run(env, "list")
    assert result.exit_code != 0 and "flask rpc init-db" in result.output


# -- the admin page -------------------------------------------------------------------

ADMIN = {
    "RPCENABLE_ADMIN_ENABLED": True,
    "RPCENABLE_ADMIN_USERNAME": "admin",
    "RPCENABLE_ADMIN_PASSWORD": "pw",
}
AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()}


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


def shown_key(html: str, username: str) -> str:
    match = re.search(
        rf"API key of {re.escape(username)}: (?:<code[^>]*>)?([A-Za-z0-9_-]{{32,}})", html
    )
    assert match, html[:2000]
    return match.group(1)


def test_admin_page(tmp_path: Path, serve: Callable[..., Any]) -> None:
    env = make_env(tmp_path, serve=serve, **ADMIN)
    client = env.app.test_client()
    assert client.get("/admin/api-users/").status_code == 401

    form = client.get("/admin/api-users/new/", headers=AUTH)
    assert form.status_code == 200
    assert "api_key" not in form.text
    created = client.post(
        "/admin/api-users/new/",
        data={"username": "gina", "active": "y", "csrf_token": csrf(form.text)},
        headers=AUTH,
    )
    # the key page answers the POST itself: no redirect, nothing kept for a next page
    assert created.status_code == 200
    assert "no-store" in created.headers["Cache-Control"]
    key = shown_key(created.text, "gina")
    proxy = env.proxy()
    assert proxy.auth_echo(*v1("gina", key)) == "User gina says: "

    listing = client.get("/admin/api-users/", headers=AUTH)
    user = env.user("gina")
    assert "gina" in listing.text
    for header in ("Username", "Active", "Last login", "Created"):
        assert header in listing.text
    details = client.get(f"/admin/api-users/details/?id={user.id}", headers=AUTH)
    for page in (listing, details, client.get(f"/admin/api-users/edit/?id={user.id}",
                                              headers=AUTH)):
        assert key not in page.text and user.api_key_encrypted not in page.text
        assert "api_key_encrypted" not in page.text
    # the key is shown once: not on the next page
    assert key not in client.get("/admin/api-users/", headers=AUTH).text
    assert "gina" in client.get("/admin/api-users/?search=gin", headers=AUTH).text
    assert "gina" not in client.get("/admin/api-users/?search=zzz", headers=AUTH).text

    token = csrf(listing.text)
    regenerated = client.post(
        "/admin/api-users/action/",
        data={"action": "regenerate_key", "rowid": str(user.id), "csrf_token": token},
        headers=AUTH,
    )
    assert regenerated.status_code == 200
    assert "no-store" in regenerated.headers["Cache-Control"]
    new_key = shown_key(regenerated.text, "gina")
    assert new_key != key
    assert fault_of(lambda: proxy.auth_echo(*v1("gina", key))).faultCode == 406
    assert proxy.auth_echo(*v1("gina", new_key)) == "User gina says: "

    client.post(
        "/admin/api-users/action/",
        data={"action": "deactivate", "rowid": str(user.id), "csrf_token": token},
        headers=AUTH,
        follow_redirects=True,
    )
    assert env.user("gina").active is False
    assert fault_of(lambda: proxy.auth_echo(*v1("gina", new_key))).faultCode == 406
    client.post(
        "/admin/api-users/action/",
        data={"action": "activate", "rowid": str(user.id), "csrf_token": token},
        headers=AUTH,
        follow_redirects=True,
    )
    assert env.user("gina").active is True
    filtered = client.get("/admin/api-users/", headers=AUTH)
    assert "Active" in filtered.text


def test_admin_forms_need_csrf(tmp_path: Path) -> None:
    env = make_env(tmp_path, **ADMIN)
    client = env.app.test_client()
    client.post("/admin/api-users/new/", data={"username": "eve", "active": "y"}, headers=AUTH)
    with env.app.app_context():
        count = env.db.session.execute(sa.select(sa.func.count()).select_from(env.model))
        assert count.scalar_one() == 0


def test_key_cipher_is_built_once_per_list_of_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask_rpcenable.auth import users

    users._cipher_for.cache_clear()  # ciphers built by earlier tests
    built: list[object] = []
    original = users._fernet_for

    def counting(secret: str | bytes) -> object:
        built.append(secret)
        return original(secret)

    monkeypatch.setattr(users, "_fernet_for", counting)
    env = make_env(tmp_path, SECRET_KEY="first-secret")
    with env.app.app_context():
        tokens = [users.encrypt_api_key(f"key-{i}") for i in range(5)]
        assert [users.decrypt_api_key(t) for t in tokens] == [f"key-{i}" for i in range(5)]
    assert built == ["first-secret"]
    env.app.config["SECRET_KEY"] = "second-secret"
    env.app.config["SECRET_KEY_FALLBACKS"] = ["first-secret"]
    with env.app.app_context():
        assert users.decrypt_api_key(tokens[0]) == "key-0"  # rebuilt for the new secrets
    assert built == ["first-secret", "second-secret", "first-secret"]
