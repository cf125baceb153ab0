"""Issue 14, items 2 and 6: checks of the HMAC verifier that a broken line would pass.

Each test here fails when one guard is broken on purpose: the signature
compared only in part, nonces kept 1 s instead of twice the window,
``user_filter`` skipped for scheme v2, and authentication work repeated for
every entry of a multicall whose credentials already failed.
"""

from __future__ import annotations

import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import cachelib.simple
import pytest
import sqlalchemy as sa
from auth_helpers import AuthEnv, V2Transport, make_env, v1
from flask_sqlalchemy import SQLAlchemy

from flask_rpcenable import RPCEnable
from flask_rpcenable.auth import lookup, verifier
from flask_rpcenable.auth.signing import compute_signature, new_nonce, sign_request_v2

AUTH_FAILED = 406


def _call(env: AuthEnv, method: str, *params: Any, path: str = "/rpc/",
          headers: dict[str, str] | None = None) -> Any:
    body = xmlrpc.client.dumps(params, method, allow_none=True)
    response = env.app.test_client().post(
        path, data=body, content_type="text/xml", headers=headers or {}
    )
    assert response.status_code == 200
    try:
        return xmlrpc.client.loads(response.data)[0][0]
    except xmlrpc.client.Fault as fault:
        return fault


def _code(result: Any) -> int | None:
    return result.faultCode if isinstance(result, xmlrpc.client.Fault) else None


@pytest.fixture
def env(tmp_path: Path) -> AuthEnv:
    return make_env(tmp_path, RPCENABLE_LOG_INCOMING=True)


# -- the signature is compared whole ---------------------------------------------


def _flip(char: str) -> str:
    return "0" if char != "0" else "1"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s[:-1] + _flip(s[-1]),
        lambda s: s[:32] + _flip(s[32]) + s[33:],
        lambda s: s[:-1],
        lambda s: s[:8],
        lambda s: s + "0",
        lambda s: s.upper(),
    ],
    ids=["last-char", "middle-char", "one-short", "first-8", "one-long", "uppercase"],
)
def test_v1_signature_must_match_in_full(env: AuthEnv, tamper: Any) -> None:
    key = env.add_user("alice")
    nonce, stamp = new_nonce(), int(time.time())
    good = compute_signature(nonce, stamp, "alice", key)
    assert any(c.isalpha() for c in good)  # so that uppercase differs
    assert _code(_call(env, "auth_echo", nonce, stamp, "alice", tamper(good), "x")) == 406
    # The untouched signature (same nonce, still unused) works.
    assert _call(env, "auth_echo", nonce, stamp, "alice", good, "x") == "User alice says: x"


@pytest.mark.parametrize("cut", [1, 8, 63])
def test_v2_signature_must_match_in_full(env: AuthEnv, cut: int) -> None:
    key = env.add_user("alice")
    body = xmlrpc.client.dumps((), "whoami").encode()
    header = sign_request_v2("alice", key, "POST", "/rpc/v2/", body)
    head, _, signature = header.rpartition("signature=")
    for bad in (signature[:-cut], signature[:-1] + _flip(signature[-1])):
        response = env.app.test_client().post(
            "/rpc/v2/", data=body, content_type="text/xml",
            headers={"Authorization": head + "signature=" + bad},
        )
        with pytest.raises(xmlrpc.client.Fault) as info:
            xmlrpc.client.loads(response.data)
        assert info.value.faultCode == AUTH_FAILED


# -- nonces live as long as they could be valid ------------------------------------


def test_in_process_nonce_outlives_a_short_cache(
    env: AuthEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A nonce replayed 400 s later, still inside the window of its timestamp, is 402.

    The timestamp is 250 s ahead (allowed: the window is 300 s both ways), so
    400 s later it is 150 s behind: still valid, and the nonce must still be
    remembered (it is kept twice the window).
    """
    key = env.add_user("alice")
    real = time.time
    stamp = int(real()) + 250
    args = v1("alice", key, timestamp=stamp)
    assert _call(env, "auth_echo", *args, "first") == "User alice says: first"

    def later() -> float:
        return real() + 400

    monkeypatch.setattr(time, "time", later)
    monkeypatch.setattr(cachelib.simple, "time", later)
    assert _code(_call(env, "auth_echo", *args, "replayed")) == 402
    # A fresh nonce at the same (shifted) time works: the clock shift is not the refusal.
    assert _call(env, "auth_echo", *v1("alice", key, timestamp=stamp), "new") == (
        "User alice says: new"
    )


def test_nonce_store_keeps_twice_the_window(tmp_path: Path) -> None:
    env = make_env(tmp_path, RPCENABLE_AUTH_WINDOW=120)
    authenticator = env.rpc.state(env.app).dispatcher.authenticator
    assert authenticator.nonces.timeout == 240


# -- user_filter holds for both schemes ----------------------------------------------


def _filtered(rpc: RPCEnable, db: SQLAlchemy) -> None:
    @rpc.register(version=3)
    @rpc.auth(user_filter=lambda user: user.username.startswith("ops-"))
    def ops_only(user: Any) -> str:
        return f"ops {user.username}"

    @rpc.register(version=3)
    @rpc.auth
    def anyone(user: Any) -> str:
        return f"any {user.username}"


def test_user_filter_applies_to_v2(tmp_path: Path, serve: Any) -> None:
    env = make_env(tmp_path, serve=serve, setup=_filtered)
    ops, other = env.add_user("ops-1"), env.add_user("acme")
    assert env.v2_proxy("ops-1", ops, path="/rpc/v3/").ops_only() == "ops ops-1"
    with pytest.raises(xmlrpc.client.Fault) as info:
        env.v2_proxy("acme", other, path="/rpc/v3/").ops_only()
    assert info.value.faultCode == AUTH_FAILED
    assert env.v2_proxy("acme", other, path="/rpc/v3/").anyone() == "any acme"
    # v1 for comparison: the same refusal.
    with pytest.raises(xmlrpc.client.Fault):
        env.proxy("/rpc/v3/").ops_only(*v1("acme", other))
    assert isinstance(V2Transport, type)


# -- a multicall of forged calls costs about one forged call ---------------------------


class Counter:
    """Counts user reads from the database and key decryptions.

    The reads are counted where the lookup sends its ``SELECT`` (on the raw
    connection of the library's pool, which engine events do not see).
    """

    def __init__(self, env: AuthEnv, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lookups = 0
        self.decryptions = 0
        original = verifier.decrypt_api_key
        original_read = lookup.UserLookup._read

        self.counting = True

        def decrypt(token: str, *args: Any, **kwargs: Any) -> str:
            self.decryptions += self.counting
            return original(token, *args, **kwargs)

        def read(self_: Any, username: str) -> Any:
            self.lookups += self.counting
            return original_read(self_, username)

        # Both are put back by the monkeypatch fixture when the test ends.
        monkeypatch.setattr(verifier, "decrypt_api_key", decrypt)
        monkeypatch.setattr(lookup.UserLookup, "_read", read)

    def stop(self) -> None:
        self.counting = False


def _multicall(env: AuthEnv, calls: list[dict[str, Any]]) -> list[Any]:
    result = _call(env, "system.multicall", calls)
    assert isinstance(result, list), result
    return result


def _log_rows(env: AuthEnv) -> int:
    model = env.rpc.state(env.app).models.IncomingCall
    with env.app.app_context():
        return env.db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_forged_multicall_does_one_lookup(env: AuthEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    env.add_user("alice")
    forged = v1("alice", "not-alices-key-" * 3)
    calls = [{"methodName": "auth_echo", "params": [*forged, "x"]}] * 1000
    counter = Counter(env, monkeypatch)
    try:
        results = _multicall(env, calls)
    finally:
        counter.stop()
    assert [r["faultCode"] for r in results] == [AUTH_FAILED] * 1000
    assert {r["faultString"] for r in results} == {"Authentication failed"}
    assert counter.lookups == 1 and counter.decryptions == 1
    assert _log_rows(env) == 1001  # every call still has its row


def test_forged_multicall_with_many_names_is_capped(
    env: AuthEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [
        {"methodName": "auth_echo", "params": [*v1(f"user{i}", "k" * 40), "x"]}
        for i in range(200)
    ]
    counter = Counter(env, monkeypatch)
    try:
        results = _multicall(env, calls)
    finally:
        counter.stop()
    assert {r["faultCode"] for r in results} == {AUTH_FAILED}
    assert counter.lookups <= verifier.MAX_FAILED_PER_REQUEST
    assert counter.decryptions <= verifier.MAX_FAILED_PER_REQUEST


def test_nonce_repeated_in_a_multicall(env: AuthEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    key = env.add_user("alice")
    args = v1("alice", key)
    calls = [{"methodName": "auth_echo", "params": [*args, str(i)]} for i in range(50)]
    counter = Counter(env, monkeypatch)
    try:
        results = _multicall(env, calls)
    finally:
        counter.stop()
    assert results[0] == ["User alice says: 0"]
    assert [r["faultCode"] for r in results[1:]] == [402] * 49
    assert counter.decryptions == 1


def test_good_multicall_is_not_slowed_or_refused(env: AuthEnv) -> None:
    key = env.add_user("alice")
    calls = [
        {"methodName": "auth_echo", "params": [*v1("alice", key), str(i)]} for i in range(20)
    ]
    results = _multicall(env, calls)
    assert results == [[f"User alice says: {i}"] for i in range(20)]


def test_one_failure_does_not_poison_other_users(env: AuthEnv) -> None:
    key = env.add_user("alice")
    bob = env.add_user("bob")
    calls = [
        {"methodName": "auth_echo", "params": [*v1("bob", key), "forged"]},
        {"methodName": "auth_echo", "params": [*v1("alice", key), "a"]},
        {"methodName": "auth_echo", "params": [*v1("bob", bob), "b"]},
    ]
    results = _multicall(env, calls)
    assert results[0]["faultCode"] == AUTH_FAILED
    assert results[1] == ["User alice says: a"]
    # bob failed once in this request: his later entries are refused without work.
    assert results[2]["faultCode"] == AUTH_FAILED
    # A new request starts afresh.
    assert _call(env, "auth_echo", *v1("bob", bob), "later") == "User bob says: later"


def test_a_user_filter_refusal_does_not_poison(tmp_path: Path) -> None:
    env = make_env(tmp_path, setup=_filtered)
    key = env.add_user("acme")
    calls = [
        {"methodName": "ops_only", "params": v1("acme", key)},
        {"methodName": "anyone", "params": v1("acme", key)},
    ]
    results = _call(env, "system.multicall", calls, path="/rpc/v3/")
    assert results[0]["faultCode"] == AUTH_FAILED
    assert results[1] == ["any acme"]
