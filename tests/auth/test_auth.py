"""HMAC authentication over real HTTP: scheme v1, every fault code, replay,
clock skew, indistinguishable failures, options of ``@rpc.auth``."""

from __future__ import annotations

import json
import logging
import threading
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from auth_helpers import AuthEnv, fault_of, make_env, v1
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

import flask_rpcenable.auth.verifier as auth_module
from flask_rpcenable import RPCEnable, signals
from flask_rpcenable.auth.marker import mark_auth
from flask_rpcenable.auth.signing import compute_signature, new_nonce
from flask_rpcenable.auth.users import BaseAPIUser, api_user_model, create_api_user
from flask_rpcenable.auth.verifier import MSG_FAILED
from flask_rpcenable.bookkeeping import bookkeeping_engine


@pytest.fixture
def env(tmp_path: Path, serve: Callable[..., Any]) -> AuthEnv:
    environment = make_env(tmp_path, serve=serve, RPCENABLE_LOG_INCOMING=True)
    environment.add_user("alice")
    environment.add_user("carol")
    environment.add_user("bob", active=False)
    return environment


# -- success ----------------------------------------------------------------------


def test_v1_call_succeeds_and_passes_the_user_first(env: AuthEnv) -> None:
    proxy = env.proxy()
    assert proxy.auth_echo(*v1("alice", env.keys["alice"]), "Hi!") == "User alice says: Hi!"
    # a timestamp sent as a digit string is accepted too (django-rpcenable clients did that)
    args = v1("alice", env.keys["alice"], timestamp=str(int(time.time())))
    assert proxy.auth_echo(*args) == "User alice says: "
    assert env.calls == [("alice", "Hi!"), ("alice", "")]


def test_last_login_is_set_with_one_update(env: AuthEnv) -> None:
    assert env.user("alice").last_login is None
    statements: list[str] = []
    with env.app.app_context():
        # The app's engine, and the one the library writes its stamps with.
        engines = {env.db.engine, bookkeeping_engine(env.db)}

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "rpcenable_api_user" in statement:
            statements.append(" ".join(statement.split()).upper())

    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        env.proxy().auth_echo(*v1("alice", env.keys["alice"]), "x")
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", listen)
    updates = [s for s in statements if s.startswith("UPDATE")]
    assert len(updates) == 1, statements
    assert "SET LAST_LOGIN=" in updates[0].replace(" = ", "=")
    assert env.user("alice").last_login is not None
    assert env.user("carol").last_login is None


def test_multicall_with_v1_arguments_per_call(env: AuthEnv) -> None:
    proxy = env.proxy()
    multi = xmlrpc.client.MultiCall(proxy)
    multi.auth_echo(*v1("alice", env.keys["alice"]), "one")
    multi.auth_echo(*v1("carol", env.keys["carol"]), "two")
    multi.auth_echo(*v1("carol", env.keys["alice"]), "three")
    results = multi()
    assert results[0] == "User alice says: one"
    assert results[1] == "User carol says: two"
    with pytest.raises(xmlrpc.client.Fault) as info:
        results[2]
    assert info.value.faultCode == 406


# -- every fault code -------------------------------------------------------------


def _now() -> int:
    return int(time.time())


@pytest.mark.parametrize(
    ("make_args", "code"),
    [
        (lambda k: v1("alice", k, nonce="short"), 401),
        (lambda k: v1("alice", k, nonce="a" * 15), 401),
        (lambda k: v1("alice", k, nonce="a" * 129), 401),
        (lambda k: v1("alice", k, nonce="a" * 15 + "!"), 401),
        (lambda k: v1("alice", k, nonce="a" * 15 + "é"), 401),
        (lambda k: [1234567890, _now(), "alice", "x"], 401),
        (lambda k: [], 401),
        (lambda k: [new_nonce(), _now()], 401),
        (lambda k: v1("alice", k, timestamp="12a4"), 403),
        (lambda k: v1("alice", k, timestamp=""), 403),
        (lambda k: v1("alice", k, timestamp="-5"), 403),
        (lambda k: [new_nonce(), 1.5, "alice", "x"], 403),
        (lambda k: [new_nonce(), True, "alice", "x"], 403),
        (lambda k: v1("alice", k, timestamp=_now() - 301 - 60), 403),
        (lambda k: v1("alice", k, timestamp=_now() + 301 + 60), 403),
        (lambda k: v1("x" * 256, k), 406),
        (lambda k: v1("", k), 406),
        (lambda k: [new_nonce(), _now(), 42, "x"], 406),
        (lambda k: v1("alice", k, signature="0" * 64), 406),
        (lambda k: v1("nobody", k), 406),
        (lambda k: v1("bob", k), 406),
        (lambda k: v1("alice", k)[:3] + [123], 406),
    ],
)
def test_fault_codes(env: AuthEnv, make_args: Callable[[str], list[Any]], code: int) -> None:
    fault = fault_of(lambda: env.proxy().auth_echo(*make_args(env.keys["alice"]), "x"))
    assert fault.faultCode == code, fault
    assert env.calls == []


def test_replay_is_fault_402(env: AuthEnv) -> None:
    args = v1("alice", env.keys["alice"])
    proxy = env.proxy()
    assert proxy.auth_echo(*args, "first") == "User alice says: first"
    fault = fault_of(lambda: proxy.auth_echo(*args, "again"))
    assert (fault.faultCode, fault.faultString) == (402, auth_module.MSG_REPLAY)
    # other parameters do not make the captured auth arguments fresh
    assert fault_of(lambda: proxy.auth_echo(*args, "other")).faultCode == 402
    assert env.calls == [("alice", "first")]


def test_a_nonce_is_per_user(env: AuthEnv) -> None:
    nonce = new_nonce()
    proxy = env.proxy()
    assert proxy.auth_echo(*v1("alice", env.keys["alice"], nonce=nonce)) == "User alice says: "
    assert proxy.auth_echo(*v1("carol", env.keys["carol"], nonce=nonce)) == "User carol says: "


def test_nonce_is_recorded_only_after_the_signature_checks_out(env: AuthEnv) -> None:
    nonce = new_nonce()
    proxy = env.proxy()
    forged = v1("alice", env.keys["alice"], nonce=nonce, signature="f" * 64)
    assert fault_of(lambda: proxy.auth_echo(*forged)).faultCode == 406
    # an attacker's failed attempt did not burn the nonce of the real client
    assert proxy.auth_echo(*v1("alice", env.keys["alice"], nonce=nonce), "ok") == (
        "User alice says: ok"
    )


@pytest.mark.parametrize("side", [-1, 1])
def test_clock_skew_both_sides(tmp_path: Path, serve: Callable[..., Any], side: int) -> None:
    env = make_env(tmp_path, serve=serve, RPCENABLE_AUTH_WINDOW=120)
    key = env.add_user("alice")
    proxy = env.proxy()
    inside = _now() + side * (120 - 30)
    assert proxy.auth_echo(*v1("alice", key, timestamp=inside)) == "User alice says: "
    outside = _now() + side * (120 + 30)
    fault = fault_of(lambda: proxy.auth_echo(*v1("alice", key, timestamp=outside)))
    assert fault.faultCode == 403
    assert "120 s" in fault.faultString


def test_unknown_inactive_and_bad_signature_are_indistinguishable(
    env: AuthEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    decrypts: list[str] = []
    real_decrypt = auth_module.decrypt_api_key

    def counting_decrypt(token: str, *args: Any) -> str:
        decrypts.append(token)
        return real_decrypt(token, *args)

    monkeypatch.setattr(auth_module, "decrypt_api_key", counting_decrypt)
    key = env.keys["alice"]
    proxy = env.proxy()
    attempts = {
        "unknown": v1("mallory", key),
        "inactive": v1("bob", env.keys["bob"]),
        "bad signature": v1("alice", key, signature=compute_signature("x" * 16, 1, "alice", key)),
        "upper-case signature": v1(
            "alice", key, nonce="N" * 16, timestamp=_now(),
            signature=compute_signature("N" * 16, _now(), "alice", key).upper(),
        ),
    }
    seen = set()
    for name, args in attempts.items():
        decrypts.clear()
        fault = fault_of(lambda a=args: proxy.auth_echo(*a))  # type: ignore[misc]
        seen.add((fault.faultCode, fault.faultString))
        # the same work is done whether the user exists or not
        assert len(decrypts) == 1, name
    assert seen == {(406, MSG_FAILED)}


def test_no_signature_in_faults_logs_or_call_log(
    env: AuthEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = env.keys["alice"]
    nonce, ts = new_nonce(), _now()
    expected = compute_signature(nonce, ts, "alice", key)
    given = "a1" * 32
    fault = fault_of(lambda: env.proxy().auth_echo(nonce, ts, "alice", given, "p"))
    ok_args = v1("alice", key)
    env.proxy().auth_echo(*ok_args, "q")
    assert expected not in fault.faultString and given not in fault.faultString
    assert expected not in caplog.text and given not in caplog.text
    assert key not in caplog.text
    with env.app.app_context():
        IncomingCall = env.rpc.state(env.app).models.IncomingCall  # noqa: N806
        rows = env.db.session.execute(sa.select(IncomingCall)).scalars().all()
        assert len(rows) == 2
        for row in rows:
            text = json.dumps([row.params, row.fault_string])
            for secret in (expected, given, ok_args[3], key, nonce, ok_args[0]):
                assert secret not in text
            assert json.loads(row.params)[:4] == ["***"] * 4
        assert {row.username for row in rows} == {None, "alice"}


def test_auth_runs_before_the_function_and_the_started_signal(env: AuthEnv) -> None:
    started: list[str] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        started.append(kwargs["method"])

    signals.call_started.connect(receiver)
    try:
        fault_of(lambda: env.proxy().auth_echo(*v1("nobody", "k"), "x"))
        assert started == [] and env.calls == []
        env.proxy().auth_echo(*v1("alice", env.keys["alice"]), "x")
        assert started == ["auth_echo"]
    finally:
        signals.call_started.disconnect(receiver)


def test_concurrent_replays_in_one_process(env: AuthEnv) -> None:
    args = v1("alice", env.keys["alice"])
    outcomes: list[Any] = []
    barrier = threading.Barrier(20)

    def worker() -> None:
        proxy = env.proxy()
        barrier.wait()
        try:
            outcomes.append(proxy.auth_echo(*args, "race"))
        except xmlrpc.client.Fault as fault:
            outcomes.append(fault.faultCode)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    expected = sorted([402] * 19 + ["User alice says: race"], key=str)
    assert sorted(outcomes, key=str) == expected, outcomes
    assert len(env.calls) == 1


# -- introspection and the decorator ---------------------------------------------


def test_introspection_shows_auth(env: AuthEnv) -> None:
    proxy = env.proxy()
    assert "Requires authentication" in proxy.system.methodHelp("auth_echo")
    assert "Say something" in proxy.system.methodHelp("auth_echo")
    signatures = proxy.system.methodSignature("auth_echo")
    # return type, then nonce, timestamp (int), username, signature, then var
    auth = ["string", "int", "string", "string"]
    assert signatures == [["string", *auth], ["string", *auth, "string"]]
    assert proxy.system.methodSignature("echo") == [["string"], ["string", "string"]]
    assert "Requires authentication" not in proxy.system.methodHelp("echo")


def test_auth_above_register_is_refused(rpc: RPCEnable) -> None:
    with pytest.raises(TypeError, match="below @rpc.register"):

        @rpc.auth
        @rpc.register
        def wrong(user: Any) -> None: ...


def test_auth_decorator_returns_the_function_and_checks_options(rpc: RPCEnable) -> None:
    def f(user: Any) -> str:
        return "x"

    assert rpc.auth(f) is f
    assert rpc.auth(user_filter=lambda u: True)(f) is f
    with pytest.raises(TypeError, match="unknown options"):
        rpc.auth(user_modle="x")(f)
    with pytest.raises(TypeError, match="user_filter"):
        mark_auth(f, user_filter="not a filter")
    with pytest.raises(TypeError, match="user_filter"):
        mark_auth(f, user_filter=[])

    def no_user() -> None: ...

    with pytest.raises(TypeError, match="first positional parameter"):
        rpc.register(rpc.auth(no_user))


def test_user_filter_callable_and_criteria(tmp_path: Path, serve: Callable[..., Any]) -> None:
    def setup(rpc: RPCEnable, db: SQLAlchemy) -> None:
        model = api_user_model(db)

        @rpc.register
        @rpc.auth(user_filter=lambda user: user.username.startswith("ops-"))
        def ops_only(user: Any) -> str:
            return f"ops {user.username}"

        @rpc.register
        @rpc.auth(user_filter=[model.username.endswith("-partner")])
        def partners_only(user: Any) -> str:
            return f"partner {user.username}"

    env = make_env(tmp_path, serve=serve, setup=setup)
    ops, partner = env.add_user("ops-1"), env.add_user("acme-partner")
    proxy = env.proxy()
    assert proxy.ops_only(*v1("ops-1", ops)) == "ops ops-1"
    assert proxy.partners_only(*v1("acme-partner", partner)) == "partner acme-partner"
    for fault in (
        fault_of(lambda: proxy.ops_only(*v1("acme-partner", partner))),
        fault_of(lambda: proxy.partners_only(*v1("ops-1", ops))),
    ):
        assert (fault.faultCode, fault.faultString) == (406, MSG_FAILED)


def test_user_model_option(tmp_path: Path, serve: Callable[..., Any]) -> None:
    holder: dict[str, Any] = {}

    def setup(rpc: RPCEnable, db: SQLAlchemy) -> None:
        class Robot(BaseAPIUser, db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "test_robot"
            serial: Mapped[str | None] = mapped_column(sa.String(20))

        holder["Robot"] = Robot

        @rpc.register
        @rpc.auth(user_model=Robot)
        def robot_hello(robot: Any) -> str:
            return f"robot {robot.username} #{robot.serial}"

    env = make_env(tmp_path, serve=serve, setup=setup)
    human_key = env.add_user("r2")
    with env.app.app_context():
        robot, robot_key = create_api_user(env.db, holder["Robot"], "r2")
        robot.serial = "D2"
        env.db.session.commit()
    proxy = env.proxy()
    assert proxy.robot_hello(*v1("r2", robot_key)) == "robot r2 #D2"
    # the API user of the same name, with its own key, is not a robot
    assert fault_of(lambda: proxy.robot_hello(*v1("r2", human_key))).faultCode == 406
    assert proxy.auth_echo(*v1("r2", human_key)) == "User r2 says: "
    # scheme v2 verifies against the app's user model: refused with a clear fault
    fault = fault_of(lambda: env.v2_proxy("r2", human_key).robot_hello())
    assert fault.faultCode == 406 and "scheme v1" in fault.faultString


# -- settings -------------------------------------------------------------------------


def test_v1_disabled(tmp_path: Path, serve: Callable[..., Any]) -> None:
    env = make_env(tmp_path, serve=serve, RPCENABLE_AUTH_SCHEMES="v2")
    key = env.add_user("alice")
    fault = fault_of(lambda: env.proxy().auth_echo(*v1("alice", key), "x"))
    assert fault.faultCode == 406 and "only scheme v2" in fault.faultString
    assert env.proxy().system.methodSignature("auth_echo") == [["string"], ["string", "string"]]
    assert "scheme v1" not in env.proxy().system.methodHelp("auth_echo")
    assert env.v2_proxy("alice").auth_echo("x") == "User alice says: x"


def test_v2_disabled_ignores_the_header(tmp_path: Path, serve: Callable[..., Any]) -> None:
    env = make_env(tmp_path, serve=serve, RPCENABLE_AUTH_SCHEMES=["v1"])
    key = env.add_user("alice")
    # a header that would fail verification is not even looked at
    assert env.v2_proxy("alice", "wrong key").echo("x") == "Server says: x"
    fault = fault_of(lambda: env.v2_proxy("alice").auth_echo("x"))
    assert fault.faultCode == 401
    assert env.proxy().auth_echo(*v1("alice", key), "x") == "User alice says: x"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("RPCENABLE_AUTH_SCHEMES", "v3"),
        ("RPCENABLE_AUTH_SCHEMES", []),
        ("RPCENABLE_AUTH_WINDOW", 0),
        ("RPCENABLE_AUTH_WINDOW", "300"),
        ("RPCENABLE_USER_MODEL", "no.such.module.Model"),
        ("RPCENABLE_USER_MODEL", "json.dumps"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, key: str, value: Any) -> None:
    with pytest.raises(RuntimeError, match=key if key != "RPCENABLE_USER_MODEL" else "model"):
        make_env(tmp_path, **{key: value})


def test_redact() -> None:
    from flask_rpcenable.calls import AuthResult, CallContext

    def make(schemes: tuple[str, ...]) -> Any:
        return auth_module.HMACAuthenticator(
            None, window=300, schemes=schemes, nonces=None, user_model=object  # type: ignore[arg-type]
        )

    plain = CallContext(version=None)
    verified = CallContext(version=None, verified=AuthResult(user=None, username="u", params=[]))
    params = ["n" * 16, 1, "u", "sig", "arg"]
    for schemes in (("v1", "v2"), ("v2",)):
        authenticator = make(schemes)
        assert authenticator.redact(params, plain) == ["***"] * 4 + ["arg"]
        assert authenticator.redact(["a"], plain) == ["***"]
        assert authenticator.redact(params, verified) == params
