"""Setting up the call log: off by default, its settings checked, its models and tables
(``flask rpc init-db``), one log for two RPC objects, and old rows pruned."""

from __future__ import annotations

import datetime
import xmlrpc.client
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from log_app import LogApp

from flask_rpcenable import RPCEnable
from flask_rpcenable.calllog.models import define_log_models
from flask_rpcenable.calllog.recorder import record_outgoing

MakeLogApp = Callable[..., LogApp]


def test_logging_off_by_default(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, RPCENABLE_LOG_INCOMING=False, RPCENABLE_LOG_OUTGOING=False)
    assert log.state.dispatcher.recorders == []
    log.call("echo", "x")
    with log.app.app_context():
        record_outgoing(url="http://h/", method="m", params=[], duration_ms=1.0)
    assert log.rows() == [] and log.rows(log.OutgoingCall) == []


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
