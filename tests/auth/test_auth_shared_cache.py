"""Replay protection on real shared caches (Redis, memcached).

Twenty calls with the same nonce at once, from threads against one server
and from threads against two separate server processes sharing the cache:
exactly one is accepted. Each test uses its own key prefix so that
concurrent test runs do not collide.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import textwrap
import threading
import uuid
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from auth_helpers import make_env, v1
from live import env_or_skip

from flask_rpcenable.auth.nonces import redis_client_of

BACKENDS = ["redis", "memcached"]


def cache_config(backend: str, prefix: str) -> dict[str, Any]:
    if backend == "redis":
        return {
            "RPCENABLE_CACHE_TYPE": "RedisCache",
            "RPCENABLE_CACHE_REDIS_URL": env_or_skip("RPCENABLE_TEST_REDIS_URL"),
            "RPCENABLE_CACHE_KEY_PREFIX": prefix,
        }
    return {
        "RPCENABLE_CACHE_TYPE": "MemcachedCache",
        "RPCENABLE_CACHE_MEMCACHED_SERVERS": [env_or_skip("RPCENABLE_TEST_MEMCACHED")],
        "RPCENABLE_CACHE_KEY_PREFIX": prefix,
    }


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"rpctest_{uuid.uuid4().hex[:12]}_"
    yield value
    url = os.environ.get("RPCENABLE_TEST_REDIS_URL")
    if url:
        import redis

        client = redis.from_url(url)
        keys = list(client.scan_iter(f"{value}*"))
        if keys:
            client.delete(*keys)
        client.close()


def close_cache(env: Any) -> None:
    """Close the cache client's sockets now rather than at garbage collection."""
    backend = env.app.extensions["cache"][env.rpc.state(env.app).cache]
    client = redis_client_of(backend) or getattr(backend, "_client", None)
    if client is not None:
        client.close()


def race(urls: list[str], args: list[Any], count: int = 20) -> list[Any]:
    """``count`` simultaneous calls of ``auth_echo(*args)`` spread over ``urls``."""
    outcomes: list[Any] = []
    barrier = threading.Barrier(count)
    lock = threading.Lock()

    def worker(url: str) -> None:
        proxy = xmlrpc.client.ServerProxy(url)
        barrier.wait()
        try:
            outcome: Any = proxy.auth_echo(*args, "race")
        except xmlrpc.client.Fault as fault:
            outcome = fault.faultCode
        with lock:
            outcomes.append(outcome)

    threads = [
        threading.Thread(target=worker, args=(urls[i % len(urls)],)) for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_replays_threads(tmp_path: Path, serve: Callable[..., Any], backend: str,
                                    prefix: str) -> None:
    env = make_env(tmp_path, serve=serve, **cache_config(backend, prefix))
    key = env.add_user("alice")
    try:
        outcomes = race([env.url + "/rpc/"], v1("alice", key))
    finally:
        close_cache(env)
    assert sorted(outcomes, key=str) == sorted(
        [402] * 19 + ["User alice says: race"], key=str
    ), outcomes
    assert len(env.calls) == 1


def test_redis_nonce_expires_after_twice_the_window(tmp_path: Path, prefix: str) -> None:
    import redis

    env = make_env(tmp_path, RPCENABLE_AUTH_WINDOW=100, **cache_config("redis", prefix))
    nonces = env.rpc.state(env.app).dispatcher.authenticator.nonces
    with env.app.app_context():
        assert nonces.add("alice", "n" * 16) is True
        assert nonces.add("alice", "n" * 16) is False
    client = redis.from_url(os.environ["RPCENABLE_TEST_REDIS_URL"])
    ttl = client.ttl(prefix + nonces.key("alice", "n" * 16))
    client.close()
    close_cache(env)
    assert 100 < ttl <= 200


SERVER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from typing import Any
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy
    from werkzeug.serving import make_server
    from flask_rpcenable import RPCEnable

    app = Flask("sharedapp", instance_path=sys.argv[2])
    app.config.update(json.loads(sys.argv[1]))
    db = SQLAlchemy(app)
    rpc = RPCEnable()

    @rpc.register
    @rpc.auth
    def auth_echo(user: Any, var: str = "") -> str:
        return f"User {user.username} says: {var}"

    rpc.init_app(app, db=db)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()
    """
)


def start_server(script: Path, config: dict[str, Any], instance: Path) -> tuple[Any, int]:
    proc = subprocess.Popen(
        [sys.executable, str(script), json.dumps(config), str(instance)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
    ready = selector.select(timeout=60)
    selector.close()
    line = proc.stdout.readline() if ready else ""  # type: ignore[union-attr]
    if not line.strip().isdigit():
        proc.kill()
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
        raise AssertionError(f"server process did not start (exit code {proc.poll()})")
    return proc, int(line)


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_replays_two_processes(tmp_path: Path, backend: str, prefix: str) -> None:
    config = {
        "TESTING": True,
        "SECRET_KEY": "shared-secret-for-the-test",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'shared.sqlite'}",
        "RPCENABLE_ADMIN_ENABLED": False,
        **cache_config(backend, prefix),
    }
    env = make_env(tmp_path, **config)  # creates the tables and the user
    key = env.add_user("alice")
    close_cache(env)
    script = tmp_path / "server_app.py"
    script.write_text(SERVER_SCRIPT)
    procs: list[Any] = []
    try:
        for n in range(2):
            proc, port = start_server(script, config, tmp_path / f"instance{n}")
            procs.append((proc, port))
        urls = [f"http://127.0.0.1:{port}/rpc/" for _, port in procs]
        # both servers work on their own
        for url in urls:
            assert xmlrpc.client.ServerProxy(url).auth_echo(*v1("alice", key), "hi") == (
                "User alice says: hi"
            )
        outcomes = race(urls, v1("alice", key))
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            proc.stdout.close()
    assert sorted(outcomes, key=str) == sorted(
        [402] * 19 + ["User alice says: race"], key=str
    ), outcomes


def test_redis_nonce_is_one_atomic_set(
    tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SET NX EX, one command: no nonce is ever left without its expiry."""
    env = make_env(tmp_path, RPCENABLE_AUTH_WINDOW=100, **cache_config("redis", prefix))
    backend = env.app.extensions["cache"][env.rpc.state(env.app).cache]
    client = redis_client_of(backend)
    sent: list[tuple[Any, ...]] = []
    original = client.set

    def set_(name: str, value: Any, **options: Any) -> Any:
        sent.append((name, options))
        return original(name, value, **options)

    monkeypatch.setattr(client, "set", set_)
    nonces = env.rpc.state(env.app).dispatcher.authenticator.nonces
    with env.app.app_context():
        assert nonces.add("alice", "m" * 16) is True
    close_cache(env)
    assert sent == [(prefix + nonces.key("alice", "m" * 16), {"nx": True, "ex": 200})]
    # The client is the one build_cache made, with its short timeouts.
    assert client.connection_pool.connection_kwargs["socket_timeout"] is not None
