"""The opt-in user cache, ``RPCENABLE_AUTH_USER_CACHE_SECONDS`` (issue 13).

With it, the row of an active user is reused for at most that many seconds
per process: a deactivation takes effect once the time has passed. A new or
reactivated user works at once (only active users are kept), and a
signature that fails against a remembered row reads the row again, so a
new key works at once. The clock is the cache's own, set by the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from auth_helpers import AuthEnv, count_user_reads, fault_of, make_env

from flask_rpcenable.auth.nonces import NonceStore
from flask_rpcenable.auth.processcache import ProcessNonceCache
from flask_rpcenable.auth.usercache import TimedCache
from flask_rpcenable.auth.users import encrypt_api_key, generate_api_key

SECONDS = 30


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The user names read from the database (the raw path)."""
    return count_user_reads(monkeypatch)


@pytest.fixture
def env(tmp_path: Path, serve: Callable[..., Any]) -> AuthEnv:
    environment = make_env(tmp_path, serve=serve, RPCENABLE_AUTH_USER_CACHE_SECONDS=SECONDS)
    environment.add_user("alice")
    return environment


@pytest.fixture
def clock(env: AuthEnv) -> Clock:
    lookup = env.rpc.state(env.app).dispatcher.authenticator._lookup(env.model)
    assert lookup.cache is not None and lookup.cache.seconds == SECONDS
    lookup.cache.clock = Clock()
    return lookup.cache.clock


OK = "User alice says: x"


def test_a_deactivation_takes_effect_once_the_time_has_passed(
    env: AuthEnv, clock: Clock, reads: list[str]
) -> None:
    assert env.call_as() == OK
    env.set_user("alice", active=False)
    clock.now += SECONDS - 1
    assert env.call_as() == OK  # still remembered
    assert reads == ["alice"]
    clock.now += 1
    assert fault_of(lambda: env.call_as()).faultCode == 406
    assert reads == ["alice", "alice"]


def test_new_and_reactivated_users_work_at_once(
    env: AuthEnv, clock: Clock, reads: list[str]
) -> None:
    assert fault_of(lambda: env.call_as("dave", "k" * 43)).faultCode == 406
    env.add_user("dave")
    assert env.call_as("dave") == "User dave says: x"
    env.set_user("alice", active=False)
    assert fault_of(lambda: env.call_as()).faultCode == 406
    env.set_user("alice", active=True)
    assert env.call_as() == OK
    assert reads == ["dave", "dave", "alice", "alice"]


def test_a_new_key_works_at_once_and_then_the_old_one_stops(
    env: AuthEnv, clock: Clock, reads: list[str]
) -> None:
    old = env.keys["alice"]
    assert env.call_as("alice", old) == OK
    new = generate_api_key()
    with env.app.app_context():
        env.set_user("alice", api_key_encrypted=encrypt_api_key(new, env.app))
    assert env.call_as("alice", old) == OK  # the remembered row still has the old key
    assert env.call_as("alice", new) == OK  # it fails against the row, so the row is read again
    assert fault_of(lambda: env.call_as("alice", old)).faultCode == 406
    assert reads == ["alice", "alice", "alice"]


def test_a_wrong_signature_is_refused_after_one_more_read(
    env: AuthEnv, clock: Clock, reads: list[str]
) -> None:
    assert env.call_as() == OK
    assert fault_of(lambda: env.call_as("alice", "not-alices-key-" * 3)).faultCode == 406
    assert reads == ["alice", "alice"]


def test_the_memory_is_bounded_and_forgets_expired_entries() -> None:
    clock = Clock()
    cache: TimedCache[int] = TimedCache(10, size=3, clock=clock)
    for i in range(5):
        cache.put(f"user{i}", i)
    assert len(cache) == 3
    assert [cache.get(f"user{i}") for i in range(5)] == [None, None, 2, 3, 4]
    cache.put("user2", 22)  # stored again: now the newest
    cache.put("user5", 5)
    assert [cache.get(f"user{i}") for i in (2, 3, 5)] == [22, None, 5]
    clock.now += 10
    assert cache.get("user5") is None and len(cache) == 2  # user4, user2 left
    cache.forget("user2")
    assert len(cache) == 1


@pytest.mark.parametrize("value", [-1, "5", True, None])
def test_the_setting_is_checked(tmp_path: Path, value: Any) -> None:
    with pytest.raises(RuntimeError, match="RPCENABLE_AUTH_USER_CACHE_SECONDS"):
        make_env(tmp_path, RPCENABLE_AUTH_USER_CACHE_SECONDS=value)


def test_a_nonce_is_added_once_while_it_lives() -> None:
    clock = [1000.0]
    cache = ProcessNonceCache(threshold=2, clock=lambda: clock[0])
    store = NonceStore(cache, timeout=60)
    assert store.add("alice", "n" * 16)
    assert not store.add("alice", "n" * 16)
    assert store.add("bob", "n" * 16)  # another user's nonce is another entry
    key = NonceStore.key("alice", "n" * 16)
    assert cache.get(key) == "1"
    clock[0] += 59.9
    assert not store.add("alice", "n" * 16)  # still alive
    clock[0] += 0.1
    assert store.add("alice", "n" * 16)  # expired at 60 s: taken again
    # Over the threshold, expired entries go (at most once a second); live ones stay.
    clock[0] += 120
    assert store.add("carol", "n" * 16) and store.add("dave", "n" * 16)
    assert len(cache) == 2  # alice, bob and the second alice purged
    clock[0] += 1
    assert store.add("erin", "n" * 16)
    assert len(cache) == 3  # nothing expired: nothing purged
    assert cache.has(NonceStore.key("carol", "n" * 16))
