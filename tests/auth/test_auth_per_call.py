"""What authentication reads on every call, and what it may remember (issue 13).

The user is read from the database on every call, so a deactivated user, a
changed key or a rotated secret takes effect on the next call; decrypted
keys are remembered only by stored token and configured secrets; and
``last_login`` is written at most once a minute per user.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from auth_helpers import AuthEnv, fault_of, make_env, v1

from flask_rpcenable.auth import lookup, users
from flask_rpcenable.bookkeeping import bookkeeping_engine


@pytest.fixture
def env(tmp_path: Path, serve: Callable[..., Any]) -> AuthEnv:
    environment = make_env(tmp_path, serve=serve)
    environment.add_user("alice")
    return environment


def test_deactivated_user_is_refused_on_the_next_call(env: AuthEnv) -> None:
    assert env.call_as() == "User alice says: x"
    env.set_user("alice", active=False)
    assert fault_of(lambda: env.call_as()).faultCode == 406
    env.set_user("alice", active=True)
    assert env.call_as() == "User alice says: x"


def test_changed_key_takes_effect_on_the_next_call(env: AuthEnv) -> None:
    old = env.keys["alice"]
    assert env.call_as("alice", old) == "User alice says: x"
    new = users.generate_api_key()
    with env.app.app_context():
        env.set_user("alice", api_key_encrypted=users.encrypt_api_key(new, env.app))
    assert fault_of(lambda: env.call_as("alice", old)).faultCode == 406
    assert env.call_as("alice", new) == "User alice says: x"


def test_rotated_secret_never_hits_the_key_cache(env: AuthEnv) -> None:
    assert env.call_as() == "User alice says: x"  # the decrypted key is now cached
    old_secret = env.app.config["SECRET_KEY"]
    env.app.config["RPCENABLE_SECRET_KEY"] = "a-brand-new-secret-" * 3
    env.app.config["RPCENABLE_SECRET_KEY_FALLBACKS"] = []
    # The stored token is unchanged, but the old secret is gone: refused.
    assert fault_of(lambda: env.call_as()).faultCode == 406
    env.app.config["RPCENABLE_SECRET_KEY_FALLBACKS"] = [old_secret]
    assert env.call_as() == "User alice says: x"


def test_key_cache_is_bounded_and_keyed_by_secrets(env: AuthEnv) -> None:
    with env.app.app_context():
        tokens = [
            users.encrypt_api_key(f"key-{i}", env.app) for i in range(users.KEY_CACHE_SIZE + 10)
        ]
        assert [users.decrypt_api_key_cached(t) for t in tokens[-3:]] == [
            f"key-{i}" for i in range(users.KEY_CACHE_SIZE + 7, users.KEY_CACHE_SIZE + 10)
        ]
        for token in tokens:
            users.decrypt_api_key_cached(token)
        assert users._decrypt_under.cache_info().currsize <= users.KEY_CACHE_SIZE
        # An entry belongs to the secrets it was decrypted under.
        env.app.config["RPCENABLE_SECRET_KEY"] = "another-secret-" * 3
        with pytest.raises(RuntimeError):
            users.decrypt_api_key_cached(tokens[-1])


def test_last_login_is_written_at_most_once_a_minute(
    env: AuthEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    updates: list[str] = []
    with env.app.app_context():
        engines = {env.db.engine, bookkeeping_engine(env.db)}

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE") and "last_login" in statement:
            updates.append(statement)

    clock = [1000.0]
    monkeypatch.setattr(lookup.time, "monotonic", lambda: clock[0])
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        env.call_as()
        first = env.user("alice").last_login
        assert first is not None and len(updates) == 1
        clock[0] += lookup.LAST_LOGIN_INTERVAL - 1
        env.call_as()
        env.call_as()
        assert len(updates) == 1
        assert env.user("alice").last_login == first
        clock[0] += 2
        env.call_as()
        assert len(updates) == 2
        assert env.user("alice").last_login >= first
        # Another user has a clock of its own.
        env.add_user("carol")
        env.call_as("carol")
        assert len(updates) == 3
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", listen)


def test_the_user_is_a_session_instance_with_every_column(
    tmp_path: Path, serve: Callable[..., Any]
) -> None:
    seen: list[Any] = []

    def setup(rpc: Any, db: Any) -> None:
        @rpc.register
        @rpc.auth
        def inspect_user(user: Any) -> str:
            # Columns the lookup did not read load on first use; the
            # instance belongs to the request's session.
            seen.append((user in db.session, user.created_at is not None, user.last_login))
            # (last_login loads after this call's stamp, so it is set)
            return user.username

    environment = make_env(tmp_path, serve=serve, setup=setup)
    environment.add_user("alice")
    proxy = environment.proxy()
    assert proxy.inspect_user(*v1("alice", environment.keys["alice"])) == "alice"
    assert len(seen) == 1
    in_session, created, last_login = seen[0]
    assert in_session and created and last_login is not None
