"""The replay cache: how it is chosen, refused, warned about, and kept apart
from the app's own Flask-Caching cache."""

from __future__ import annotations

import logging
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from auth_helpers import fault_of, make_env, new_app, v1
from flask import Flask
from flask_caching import Cache
from flask_caching.jinja2ext import JINJA_CACHE_ATTR_NAME
from flask_sqlalchemy import SQLAlchemy

from flask_rpcenable import RPCEnable
from flask_rpcenable.auth.nonces import NonceStore
from flask_rpcenable.auth.processcache import ProcessNonceCache
from flask_rpcenable.auth.signing import new_nonce
from flask_rpcenable.auth.users import create_api_user


def authenticator(app: Flask, rpc: RPCEnable) -> Any:
    return rpc.state(app).dispatcher.authenticator


def test_default_cache_is_in_process_and_never_evicts_live_nonces(tmp_path: Path) -> None:
    env = make_env(tmp_path, RPCENABLE_CACHE_THRESHOLD=5)
    nonces = authenticator(env.app, env.rpc).nonces
    assert isinstance(nonces.backend, ProcessNonceCache)
    recorded = [new_nonce() for _ in range(50)]
    with env.app.app_context():
        assert all(nonces.add("alice", n) for n in recorded)
        # Flask-Caching's own SimpleCache would have dropped the oldest by now
        assert not any(nonces.add("alice", n) for n in recorded)


def test_expired_nonces_are_purged_over_the_threshold() -> None:
    clock = [1000.0]
    cache = ProcessNonceCache(threshold=3, clock=lambda: clock[0])
    for i in range(3):
        cache.add(f"old{i}", "1", timeout=1)
    clock[0] += 10  # they expire, without sleeping
    for i in range(2):
        assert cache.add(f"new{i}", "1", timeout=60)
    # Over the threshold at the first add: the three expired ones went.
    assert len(cache) == 2
    assert cache.has("new0") and cache.has("new1") and not cache.has("old0")


@pytest.mark.parametrize(
    "config",
    [
        {"RPCENABLE_CACHE_TYPE": "NullCache"},
        {"RPCENABLE_CACHE_TYPE": "flask_caching.backends.NullCache"},
    ],
)
def test_null_cache_is_refused(tmp_path: Path, config: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match="NullCache"):
        make_env(tmp_path, **config)


def test_given_null_cache_is_refused(tmp_path: Path) -> None:
    app = new_app(tmp_path)
    cache = Cache(app, config={"CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": True})
    with pytest.raises(RuntimeError, match="replay protection"):
        RPCEnable(app, cache=cache)


def test_given_cache_must_be_set_up_first(tmp_path: Path) -> None:
    app = new_app(tmp_path)
    cache = Cache(config={"CACHE_TYPE": "SimpleCache"})
    with pytest.raises(RuntimeError, match=r"cache.init_app\(app\)"):
        RPCEnable(app, cache=cache)


@pytest.mark.parametrize("debug", [False, True])
def test_per_process_cache_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, debug: bool
) -> None:
    caplog.set_level(logging.WARNING)
    env = make_env(tmp_path, TESTING=False, DEBUG=debug)
    assert "replay cache" not in caplog.text  # not at setup: on the first request
    client = env.app.test_client()
    for _ in range(2):
        client.post("/rpc/", data=xmlrpc.client.dumps(("x",), "echo"), content_type="text/xml")
    warned = [r for r in caplog.records if "lives inside one process" in r.getMessage()]
    assert len(warned) == (0 if debug else 1)


def test_no_warning_in_testing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    env = make_env(tmp_path)
    env.app.test_client().post(
        "/rpc/", data=xmlrpc.client.dumps(("x",), "echo"), content_type="text/xml"
    )
    assert "replay cache" not in caplog.text


def test_file_system_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                           serve: Callable[..., Any]) -> None:
    caplog.set_level(logging.WARNING)
    env = make_env(
        tmp_path, serve=serve, TESTING=False,
        RPCENABLE_CACHE_TYPE="FileSystemCache", RPCENABLE_CACHE_DIR=str(tmp_path / "nonces"),
    )
    assert "not atomic between processes" not in caplog.text  # said on the first request
    key = env.add_user("alice")
    args = v1("alice", key)
    assert env.proxy().auth_echo(*args) == "User alice says: "
    assert fault_of(lambda: env.proxy().auth_echo(*args)).faultCode == 402
    assert caplog.text.count("not atomic between processes") == 1


def test_given_cache_is_used(tmp_path: Path, serve: Callable[..., Any]) -> None:
    app = new_app(tmp_path)
    cache = Cache(app, config={"CACHE_TYPE": "SimpleCache", "CACHE_KEY_PREFIX": "mine_",
                               "CACHE_THRESHOLD": 10_000})
    db = SQLAlchemy(app)
    rpc = RPCEnable()

    @rpc.register
    @rpc.auth
    def hello(user: Any) -> str:
        return user.username

    rpc.init_app(app, db=db, cache=cache)
    state = rpc.state(app)
    assert state.cache is cache
    with app.app_context():
        db.create_all()
        _, key = create_api_user(db, state.models.APIUser, "alice")
    url = serve(app).url + "/rpc/"
    args = v1("alice", key)
    assert xmlrpc.client.ServerProxy(url).hello(*args) == "alice"
    with app.app_context():
        assert cache.get(NonceStore.key("alice", args[0])) == "1"


def test_apps_own_cache_is_left_alone(tmp_path: Path) -> None:
    app = new_app(
        tmp_path,
        CACHE_TYPE="FileSystemCache",
        CACHE_DIR=str(tmp_path / "app-cache"),
        CACHE_KEY_PREFIX="app_",
        CACHE_OPTIONS={"mode": 0o600},
    )
    app_cache = Cache(app)
    env_rpc = RPCEnable()
    SQLAlchemy(app)
    env_rpc.init_app(app)
    ours = env_rpc.state(app).cache
    assert ours is not app_cache
    backends = app.extensions["cache"]
    assert isinstance(backends[ours], ProcessNonceCache)
    assert type(backends[app_cache]).__name__ == "FileSystemCache"
    assert getattr(app.jinja_env, JINJA_CACHE_ATTR_NAME) is app_cache
    with app.app_context():
        app_cache.set("greeting", "hello")
        assert app_cache.get("greeting") == "hello"
        assert ours.get("greeting") is None


def test_two_endpoints_share_one_replay_cache(tmp_path: Path,
                                              serve: Callable[..., Any]) -> None:
    app = new_app(tmp_path)
    db = SQLAlchemy(app)
    public, internal = RPCEnable(), RPCEnable(name="internal", url_prefix="/internal")
    for rpc in (public, internal):

        @rpc.register
        @rpc.auth
        def hello(user: Any) -> str:
            return user.username

        rpc.init_app(app, db=db)
    assert public.state(app).cache is internal.state(app).cache
    with app.app_context():
        db.create_all()
        _, key = create_api_user(db, public.state(app).models.APIUser, "alice")
    url = serve(app).url
    args = v1("alice", key)
    assert xmlrpc.client.ServerProxy(url + "/rpc/").hello(*args) == "alice"
    fault = fault_of(lambda: xmlrpc.client.ServerProxy(url + "/internal/").hello(*args))
    assert fault.faultCode == 402
