"""The call log on SQLite and on a real PostgreSQL server: one row per call, every outcome."""

from __future__ import annotations

import datetime
import json
import logging
import time
import xmlrpc.client
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from log_app import LogApp, fresh_pg_database
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_rpcenable import RPCEnable
from flask_rpcenable.auth.signing import compute_signature, new_nonce
from flask_rpcenable.auth.users import create_api_user
from flask_rpcenable.calllog.models import as_utc, define_log_models
from flask_rpcenable.calllog.recorder import DEFAULTS, record_outgoing

MakeLogApp = Callable[..., LogApp]


def test_success_row(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    before = datetime.datetime.now(datetime.timezone.utc)
    assert log.call("echo", "Hi!") == "Server says: Hi!"
    after = datetime.datetime.now(datetime.timezone.utc)
    [row] = log.rows()
    assert row.method == "echo"
    assert row.version is None and row.protocol == "xmlrpc" and row.path == "/rpc/"
    assert json.loads(row.params) == ["Hi!"]
    assert json.loads(row.result) == "Server says: Hi!"
    assert row.ok is True and row.fault_code is None and row.traceback is None
    assert isinstance(row.duration_ms, float) and row.duration_ms >= 0
    assert row.remote_addr == "127.0.0.1"
    assert row.request_size and row.request_size > 50
    assert row.username is None and row.multicall_index is None
    assert len(row.request_id) == 32
    created = as_utc(row.created_at)
    assert created is not None and before - datetime.timedelta(seconds=1) <= created <= after


def test_versioned_call_and_faults(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    assert log.call("math.add", 2, 3, path="/rpc/v2/") == 5
    refused = log.call("refuse")
    assert isinstance(refused, xmlrpc.client.Fault) and refused.faultCode == 42
    missing = log.call("no.such.method")
    assert isinstance(missing, xmlrpc.client.Fault) and missing.faultCode == -32601
    bad_params = log.call("echo", 1, 2, 3)
    assert isinstance(bad_params, xmlrpc.client.Fault) and bad_params.faultCode == -32602
    add, refuse, nothing, bad = log.rows()
    assert (add.method, add.version, json.loads(add.result)) == ("math.add", 2, 5)
    assert (refuse.ok, refuse.fault_code, refuse.fault_string) == (False, 42, "refused on purpose")
    assert refuse.result is None
    assert (nothing.method, nothing.fault_code) == ("no.such.method", -32601)
    assert (bad.fault_code, json.loads(bad.params)) == (-32602, [1, 2, 3])


def test_unexpected_exception_keeps_traceback_in_log_only(
    db_url: str, make_log_app: MakeLogApp
) -> None:
    log = make_log_app(db_url)
    fault = log.call("explode")
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == -32500
    assert "secret internal detail" not in fault.faultString
    [row] = log.rows()
    assert row.fault_code == -32500 and row.ok is False
    assert "ValueError: secret internal detail" in row.traceback


def test_rejected_request_is_logged_as_dash(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    response = log.post(b"<methodCall><oops")
    assert b"-32700" in response.data
    [row] = log.rows()
    assert row.method == "-" and row.fault_code == -32700 and row.ok is False
    assert json.loads(row.params) == []
    assert row.request_size == len(b"<methodCall><oops")


def test_multicall_logs_each_sub_call_and_the_envelope(
    db_url: str, make_log_app: MakeLogApp
) -> None:
    log = make_log_app(db_url)
    calls = [
        {"methodName": "echo", "params": ["a"]},
        {"methodName": "refuse", "params": []},
        {"methodName": "take", "params": [{"token": "t0ps3cret", "n": 1}]},
    ]
    result = log.call("system.multicall", calls)
    assert result[0] == ["Server says: a"] and result[1]["faultCode"] == 42
    rows = log.rows()
    assert len(rows) == 4
    subs = sorted((r for r in rows if r.multicall_index is not None),
                  key=lambda r: r.multicall_index)
    [envelope] = [r for r in rows if r.multicall_index is None]
    assert [r.method for r in subs] == ["echo", "refuse", "take"]
    assert [r.multicall_index for r in subs] == [0, 1, 2]
    assert subs[1].fault_code == 42
    assert json.loads(subs[2].params) == [{"token": "***", "n": 1}]
    assert envelope.method == "system.multicall" and envelope.ok
    assert json.loads(envelope.params) == [{"methods": ["echo", "refuse", "take"]}]
    assert json.loads(envelope.result) == {"results": 2, "faults": 1}
    assert "t0ps3cret" not in envelope.params + (envelope.result or "")
    assert {r.request_id for r in rows} == {envelope.request_id}
    # another request gets another id
    log.call("echo", "b")
    assert log.rows()[-1].request_id != envelope.request_id


def test_refused_multicall_entries_get_a_row_each(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    calls: list[Any] = [
        {"methodName": "echo", "params": ["a"]},
        {"methodName": "system.multicall", "params": [[{"methodName": "echo"}]]},
        "not a struct",
        {"params": ["no method name"]},
    ]
    result = log.call("system.multicall", calls)
    assert result[0] == ["Server says: a"]
    assert [r["faultCode"] for r in result[1:]] == [-32600, -32600, -32600]
    subs = sorted((r for r in log.rows() if r.multicall_index is not None),
                  key=lambda r: r.multicall_index)
    assert [(r.method, r.multicall_index) for r in subs] == [
        ("echo", 0), ("system.multicall", 1), ("-", 2), ("-", 3)
    ]
    assert [r.fault_code for r in subs] == [None, -32600, -32600, -32600]
    assert "cannot be nested" in subs[1].fault_string
    assert all(json.loads(r.params) == [] for r in subs[1:])


def test_authenticated_and_failed_calls(db_url: str, make_log_app: MakeLogApp) -> None:
    """The real HMAC authenticator's redaction, not a stub's: no credential is stored."""

    def setup(app: Flask, rpc: RPCEnable) -> None:
        @rpc.register
        @rpc.auth
        def whoami(user: Any, var: str = "") -> str:
            return var

    log = make_log_app(db_url, setup=setup)
    with log.app.app_context():
        _, key = create_api_user(log.db, log.state.models.APIUser, "alice")
    stamp = int(time.time())
    good_nonce, bad_nonce = new_nonce(), new_nonce()
    good = [good_nonce, stamp, "alice", compute_signature(good_nonce, stamp, "alice", key)]
    forged = [bad_nonce, stamp, "alice", compute_signature(bad_nonce, stamp, "alice", "x" * 40)]
    assert log.call("whoami", *good, "x") == "x"
    failed = log.call("whoami", *forged, "x")
    assert isinstance(failed, xmlrpc.client.Fault) and failed.faultCode == 406
    ok_row, failed_row = log.rows()
    assert ok_row.username == "alice"
    assert json.loads(ok_row.params) == ["***", "***", "***", "***", "x"]
    assert failed_row.username is None and failed_row.fault_code == 406
    assert json.loads(failed_row.params) == ["***", "***", "***", "***", "x"]
    for row in (ok_row, failed_row):
        for secret in (good_nonce, bad_nonce, good[3], forged[3], key):
            assert secret not in row.params


def test_params_redacted_and_cut(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url, RPCENABLE_LOG_MAX_CHARS=300)
    log.call("take", {"user": "bob", "api_key": "AK-123", "nested": {"Password": "pw"}})
    log.call("take", "x" * 5000)
    log.call("take", xmlrpc.client.Binary(b"\x00" * 1000))
    log.call("take", xmlrpc.client.DateTime(datetime.datetime(2024, 1, 2, 3, 4, 5)))
    secret, long, binary, when = log.rows()
    assert json.loads(secret.params) == [
        {"user": "bob", "api_key": "***", "nested": {"Password": "***"}}
    ]
    assert len(long.params) <= 300 and "[cut: " in long.params
    assert "<binary 1000 bytes, base64: " in binary.params
    assert json.loads(when.params) == ["2024-01-02T03:04:05"]


def test_rollback_in_user_code_keeps_the_log_row(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    fault = log.call("write_then_fail", "lost")
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == -32500
    assert log.call("write", "kept") == "kept"
    with log.app.app_context():
        texts = log.db.session.scalars(sa.select(log.Note.text)).all()
    assert texts == ["kept"]
    assert [r.method for r in log.rows()] == ["write_then_fail", "write"]


def test_failed_log_write_does_not_disturb_user_session(
    db_url: str, make_log_app: MakeLogApp, caplog: pytest.LogCaptureFixture
) -> None:
    log = make_log_app(db_url)
    with log.app.app_context():
        log.IncomingCall.__table__.drop(log.db.engine)
    with caplog.at_level(logging.WARNING):
        assert log.call("write", "still saved") == "still saved"
    with log.app.app_context():
        assert log.db.session.scalars(sa.select(log.Note.text)).all() == ["still saved"]
    assert any(
        "rpcenable_incoming_call does not exist" in r.getMessage() for r in caplog.records
    )


def test_database_down_sqlite(
    tmp_path: Any, make_log_app: MakeLogApp, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'log.sqlite'}"
    log = make_log_app(url, create=False)
    with caplog.at_level(logging.ERROR):
        assert log.call("echo", "anyway") == "Server says: anyway"
        with log.app.app_context():
            record_outgoing(url="http://x/", method="m", params=[], duration_ms=1.0)
    messages = [r.getMessage() for r in caplog.records]
    assert any("writing the record of RPC call 'echo' failed" in m for m in messages)
    assert any("writing the log row of outgoing call 'm' failed" in m for m in messages)


def test_database_down_postgresql(
    make_log_app: MakeLogApp, caplog: pytest.LogCaptureFixture
) -> None:
    with fresh_pg_database() as url:
        log = make_log_app(url)
        assert log.call("echo", "up") == "Server says: up"
        log.dispose()
    # The database is gone now: the server answers, the log write cannot.
    with caplog.at_level(logging.ERROR):
        assert log.call("echo", "down") == "Server says: down"
    messages = [r.getMessage() for r in caplog.records]
    assert any("writing the record of RPC call 'echo' failed" in m for m in messages)


def test_row_is_committed_before_the_response(
    db_url: str, make_log_app: MakeLogApp, serve: Any
) -> None:
    log = make_log_app(db_url)
    server = serve(log.app)
    proxy = xmlrpc.client.ServerProxy(f"{server.url}/rpc/")
    engine = sa.create_engine(db_url)
    try:
        for i in range(3):
            assert proxy.echo(str(i)) == f"Server says: {i}"
            # Read from a connection of our own, right after the response.
            with engine.connect() as conn:
                count = conn.execute(
                    sa.select(sa.func.count()).select_from(log.IncomingCall.__table__)
                ).scalar_one()
            assert count == i + 1
    finally:
        proxy("close")()
        engine.dispose()


def test_remote_address_behind_proxyfix_ipv6(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    log.app.wsgi_app = ProxyFix(log.app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    log.call("echo", headers={"X-Forwarded-For": "2001:db8:85a3::8a2e:370:7334"})
    log.call("echo", headers={"X-Forwarded-For": "203.0.113.9"})
    assert [r.remote_addr for r in log.rows()] == ["2001:db8:85a3::8a2e:370:7334", "203.0.113.9"]


def test_logging_off_by_default(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, RPCENABLE_LOG_INCOMING=False, RPCENABLE_LOG_OUTGOING=False)
    assert log.state.dispatcher.recorders == []
    log.call("echo", "x")
    with log.app.app_context():
        record_outgoing(url="http://h/", method="m", params=[], duration_ms=1.0)
    assert log.rows() == [] and log.rows(log.OutgoingCall) == []


def test_record_outgoing(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url)
    # No app context: silently nothing.
    record_outgoing(url="http://h/", method="m", params=[], duration_ms=1.0)
    with log.app.app_context():
        record_outgoing(
            url="https://bob:hunter2@api.example.org/rpc/?signature=abc&page=2",
            method="remote.echo",
            params=["***", "***", "***", "***", {"password": "pw", "q": "hello"}],
            response={"ok": True, "token": "T"},
            duration_ms=12.5,
        )
        record_outgoing(
            url="http://api.example.org/rpc/",
            method="remote.fail",
            params=[],
            fault_code=406,
            fault_string="Authentication failed",
            duration_ms=3.0,
        )
        record_outgoing(
            url="http://api.example.org/rpc/",
            method="remote.down",
            params=[],
            exception="ConnectionRefusedError: [Errno 111] Connection refused",
            duration_ms=0.5,
        )
    ok, fault, error = log.rows(log.OutgoingCall)
    assert ok.url == "https://api.example.org/rpc/?signature=***&page=2"
    assert "hunter2" not in ok.url and "bob" not in ok.url
    assert json.loads(ok.params) == ["***", "***", "***", "***", {"password": "***", "q": "hello"}]
    assert json.loads(ok.response) == {"ok": True, "token": "***"}
    assert ok.ok and ok.duration_ms == 12.5
    assert (fault.ok, fault.fault_code, fault.fault_string) == (False, 406, "Authentication failed")
    assert fault.response is None
    assert error.ok is False and "Connection refused" in error.exception


def test_prune_logs_cli_and_opportunistic(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url, RPCENABLE_LOG_RETENTION_DAYS=30)
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=40)
    middle = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=10)

    def insert_old() -> None:
        with log.app.app_context(), log.db.engine.begin() as conn:
            for when in (old, middle):
                conn.execute(log.IncomingCall.__table__.insert(), {
                    "created_at": when, "method": "old", "protocol": "xmlrpc", "ok": True,
                    "duration_ms": 1.0,
                })
                conn.execute(log.OutgoingCall.__table__.insert(), {
                    "created_at": when, "url": "http://x/", "method": "old", "ok": True,
                    "duration_ms": 1.0,
                })

    # Opportunistic: the first write of the process prunes past the retention.
    insert_old()
    log.call("echo", "new")
    assert sorted(r.method for r in log.rows()) == ["echo", "old"]
    assert len(log.rows(log.OutgoingCall)) == 1
    # The CLI, with the setting and with --older-than.
    insert_old()
    runner = log.app.test_cli_runner()
    result = runner.invoke(args=["rpc", "prune-logs"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 incoming and 1 outgoing" in result.output
    result = runner.invoke(args=["rpc", "prune-logs", "--older-than", "5"])
    assert "Deleted 2 incoming and 2 outgoing" in result.output
    assert [r.method for r in log.rows()] == ["echo"]
    result = runner.invoke(args=["rpc", "prune-logs", "--older-than", "0"])
    assert result.exit_code != 0


def test_prune_without_retention_needs_older_than(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, RPCENABLE_LOG_RETENTION_DAYS=None)
    result = log.app.test_cli_runner().invoke(args=["rpc", "prune-logs"])
    assert result.exit_code != 0 and "--older-than" in result.output


def test_init_db_creates_all_component_tables(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url, create=False)
    runner = log.app.test_cli_runner()
    result = runner.invoke(args=["rpc", "init-db"])
    assert result.exit_code == 0, result.output
    tables = {
        "rpcenable_incoming_call",
        "rpcenable_outgoing_call",
        "rpcenable_api_user",
        "rpcenable_background_job",
    }
    for table in tables:
        assert f"created  {table}" in result.output
    with log.app.app_context():
        names = set(sa.inspect(log.db.engine).get_table_names())
    assert tables <= names
    assert "note" not in names  # the app's own tables are the app's business
    again = runner.invoke(args=["rpc", "init-db"])
    assert "exists   rpcenable_incoming_call" in again.output


def test_models_cached_per_db_and_on_app_metadata(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None)
    models = define_log_models(log.db)
    assert models.IncomingCall is log.IncomingCall
    assert define_log_models(log.db) is models
    assert log.IncomingCall.__table__.metadata is log.db.metadata
    columns = log.IncomingCall.__table__.c
    assert columns.remote_addr.type.length == 45
    assert columns.created_at.index and columns.created_at.type.timezone


def test_two_rpc_objects_share_the_log(tmp_path: Any, make_app: Callable[..., Flask]) -> None:
    app = make_app(RPCENABLE_LOG_INCOMING=True)
    public, internal = RPCEnable(), RPCEnable(name="internal", url_prefix="/internal")

    @public.register
    def ping() -> str:
        return "public"

    @internal.register(name="ping")
    def ping_internal() -> str:
        return "internal"

    public.init_app(app)
    internal.init_app(app)
    state = public.state(app)
    assert internal.state(app).models.IncomingCall is state.models.IncomingCall
    with app.app_context():
        state.db.create_all()
    client = app.test_client()
    for path in ("/rpc/", "/internal/"):
        client.post(path, data=xmlrpc.client.dumps((), "ping"), content_type="text/xml")
    with app.app_context():
        rows = state.db.session.scalars(sa.select(state.models.IncomingCall)).all()
        assert sorted(r.path for r in rows) == ["/internal/", "/rpc/"]
        for engine in state.db.engines.values():
            engine.dispose()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("RPCENABLE_LOG_MAX_CHARS", 5),
        ("RPCENABLE_LOG_MAX_CHARS", "1000"),
        ("RPCENABLE_LOG_RETENTION_DAYS", 0),
        ("RPCENABLE_LOG_RETENTION_DAYS", "30"),
    ],
)
def test_bad_settings_are_refused(make_app: Callable[..., Flask], key: str, value: Any) -> None:
    app = make_app(**{key: value})
    with pytest.raises(RuntimeError, match=key):
        RPCEnable().init_app(app)


def test_real_auth_component_success_and_failure(db_url: str, make_log_app: MakeLogApp) -> None:
    from flask_rpcenable import generate_auth_args
    from flask_rpcenable.auth.users import create_api_user

    def setup(app: Flask, rpc: RPCEnable) -> None:
        @rpc.register
        @rpc.auth
        def auth_echo(user: Any, var: str = "") -> str:
            return f"User {user.username} says: {var}"

    log = make_log_app(db_url, setup=setup)
    with log.app.app_context():
        _, api_key = create_api_user(log.db, log.state.models.APIUser, "alice")
    good = list(generate_auth_args("alice", api_key))
    assert log.call("auth_echo", *good, "hi") == "User alice says: hi"
    forged = list(generate_auth_args("alice", "not-the-key"))
    fault = log.call("auth_echo", *forged, "hi")
    assert isinstance(fault, xmlrpc.client.Fault) and fault.faultCode == 406
    # a multicall with a guarded sub-call: its auth arguments are redacted everywhere
    log.call("system.multicall", [
        {"methodName": "auth_echo", "params": [*generate_auth_args("alice", api_key), "m"]},
    ])
    ok_row, failed_row, sub_row, envelope = log.rows()
    assert ok_row.username == "alice" and ok_row.ok
    assert json.loads(ok_row.params) == ["***", "***", "***", "***", "hi"]
    assert failed_row.username is None and failed_row.fault_code == 406
    assert json.loads(failed_row.params) == ["***", "***", "***", "***", "hi"]
    assert sub_row.multicall_index == 0 and sub_row.username == "alice"
    assert json.loads(sub_row.params) == ["***", "***", "***", "***", "m"]
    everything = " ".join(f"{r.params} {r.result}" for r in log.rows())
    for secret in (good[3], forged[3], api_key):
        assert secret not in everything
    assert json.loads(envelope.params) == [{"methods": ["auth_echo"]}]


# -- a budget per HTTP request, one transaction per request (issue 14, item 2) ------


def _stored_bytes(rows: list[Any]) -> int:
    return sum(len((r.params or "").encode()) + len((r.result or "").encode()) for r in rows)


def test_default_budget_is_at_most_a_megabyte() -> None:
    assert 0 < DEFAULTS["RPCENABLE_LOG_REQUEST_BUDGET"] <= 1_000_000


def test_multicall_stores_at_most_the_budget(db_url: str, make_log_app: MakeLogApp) -> None:
    log = make_log_app(db_url, RPCENABLE_LOG_REQUEST_BUDGET=50_000)
    calls = [{"methodName": "echo", "params": ["x" * 9_900]} for _ in range(20)]
    result = log.call("system.multicall", calls)
    assert len(result) == 20
    rows = log.rows()
    # Every call still has its row, with its metadata.
    assert len(rows) == 21
    assert sorted(r.multicall_index for r in rows[:-1]) == list(range(20))
    assert all(r.ok and r.method == "echo" and r.duration_ms is not None for r in rows[:-1])
    assert _stored_bytes(rows) <= 50_000
    entries = rows[:-1]
    stored = [r for r in entries if "x" * 100 in (r.params or "")]
    dropped = [r for r in entries if "RPCENABLE_LOG_REQUEST_BUDGET" in (r.params or "")]
    assert 2 <= len(stored) <= 3 and len(stored) + len(dropped) == 20
    assert all(r.result is None for r in dropped)
    # The next request has a budget of its own.
    assert log.call("echo", "y" * 9_900) == "Server says: " + "y" * 9_900
    assert "y" * 9_900 in log.rows()[-1].params


def test_budget_zero_keeps_metadata_only(make_log_app: MakeLogApp, tmp_path: Any) -> None:
    log = make_log_app(f"sqlite:///{tmp_path / 'b0.sqlite'}", RPCENABLE_LOG_REQUEST_BUDGET=0)
    log.call("echo", "z")
    (row,) = log.rows()
    assert row.method == "echo" and row.ok and "RPCENABLE_LOG_REQUEST_BUDGET" in row.params


def test_budget_setting_is_checked(make_log_app: MakeLogApp) -> None:
    with pytest.raises(RuntimeError, match="RPCENABLE_LOG_REQUEST_BUDGET"):
        make_log_app(None, RPCENABLE_LOG_REQUEST_BUDGET=-1)


def test_multicall_rows_are_committed_before_the_response(
    db_url: str, make_log_app: MakeLogApp, serve: Any
) -> None:
    log = make_log_app(db_url)
    server = serve(log.app)
    proxy = xmlrpc.client.ServerProxy(f"{server.url}/rpc/")
    engine = sa.create_engine(db_url)
    try:
        multi = xmlrpc.client.MultiCall(proxy)
        for i in range(5):
            multi.echo(str(i))
        assert list(multi()) == [f"Server says: {i}" for i in range(5)]
        with engine.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(log.IncomingCall.__table__)
            ).scalar_one()
        assert count == 6
    finally:
        engine.dispose()


def test_durations_are_measured(db_url: str, make_log_app: MakeLogApp) -> None:
    """A 50 ms call is logged as taking about that long (not 0.0, not seconds)."""

    def setup(app: Flask, rpc: RPCEnable) -> None:
        @rpc.register
        def nap() -> bool:
            time.sleep(0.05)
            return True

    log = make_log_app(db_url, setup=setup)
    assert log.call("nap") is True
    (row,) = log.rows()
    assert 45.0 <= row.duration_ms < 5_000.0
