"""Setting the extension up: which database it uses, and clear errors on misuse."""

from __future__ import annotations

import sqlite3
import sys
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from live import build_app

from flask_rpcenable import RPCEnable
from flask_rpcenable.extension import SQLITE_PAGE_SIZE


def _rpc() -> RPCEnable:
    rpc = RPCEnable()

    @rpc.register
    def echo(var: str = "") -> str:
        return var

    return rpc


def _logged_methods(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT method FROM rpcenable_incoming_call")).scalars())


def test_embedded_database_leaves_the_apps_sqlalchemy_slot_free(tmp_path: Path) -> None:
    app = build_app(tmp_path, RPCENABLE_LOG_INCOMING=True)
    app_uri = app.config["SQLALCHEMY_DATABASE_URI"]
    rpc = _rpc()
    rpc.init_app(app)
    embedded = rpc.state(app).db
    # The app can still set up a database of its own afterwards.
    own = SQLAlchemy()
    own.init_app(app)
    assert app.extensions["sqlalchemy"] is own
    assert app.config["SQLALCHEMY_DATABASE_URI"] == app_uri
    with app.app_context():
        assert embedded.engine.url.database == str(Path(app.instance_path) / "rpcenable.sqlite")
        assert own.engine.url.database == str(tmp_path / "test.sqlite")
        embedded.create_all()
    body = xmlrpc.client.dumps(("hi",), "echo").encode()
    assert xmlrpc.client.loads(app.test_client().post("/rpc/", data=body).data)[0] == ("hi",)
    with app.app_context():
        assert _logged_methods(embedded.engine) == ["echo"]
        assert not sa.inspect(own.engine).has_table("rpcenable_incoming_call")


def test_embedded_database_uri_setting(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.sqlite"
    app = build_app(tmp_path, RPCENABLE_DATABASE_URI=f"sqlite:///{target}")
    rpc = _rpc()
    rpc.init_app(app)
    with app.app_context():
        assert rpc.state(app).db.engine.url.database == str(target)
        rpc.state(app).db.create_all()
    assert target.exists()


def test_a_new_embedded_sqlite_file_gets_small_pages(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    rpc = _rpc()
    rpc.init_app(app)
    with app.app_context():
        rpc.state(app).db.create_all()
        with rpc.state(app).db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == SQLITE_PAGE_SIZE == 2048


def test_an_existing_embedded_sqlite_file_keeps_its_page_size(tmp_path: Path) -> None:
    target = tmp_path / "old.sqlite"
    with sqlite3.connect(target) as conn:  # made before this version: 4 KB pages, WAL
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE kept (id INTEGER PRIMARY KEY)")
    conn.close()
    app = build_app(tmp_path, RPCENABLE_DATABASE_URI=f"sqlite:///{target}")
    rpc = _rpc()
    rpc.init_app(app)
    with app.app_context():
        rpc.state(app).db.create_all()
        with rpc.state(app).db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert sa.inspect(conn).has_table("rpcenable_incoming_call")


def test_embedded_sqlite_file_runs_in_wal_mode(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    rpc = _rpc()
    rpc.init_app(app)
    with app.app_context(), rpc.state(app).db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_the_apps_own_database_is_used_when_set_up_first(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    own = SQLAlchemy()
    own.init_app(app)
    rpc = _rpc()
    rpc.init_app(app)
    assert rpc.state(app).db is own


def test_db_given_but_not_set_up_is_a_clear_error(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    with pytest.raises(RuntimeError, match=r"needs db.init_app\(app\) to be called before"):
        _rpc().init_app(app, db=SQLAlchemy())


def test_db_set_up_on_another_app_is_a_clear_error(tmp_path: Path) -> None:
    other, app = build_app(tmp_path / "a"), build_app(tmp_path / "b")
    db = SQLAlchemy()
    db.init_app(other)
    with pytest.raises(RuntimeError, match="needs db.init_app"):
        RPCEnable(db=db).init_app(app)


def test_rq_backend_without_rq_installed_is_a_clear_error(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # Make "import rq" fail as it does where the package is not installed.
    monkeypatch.setitem(sys.modules, "rq", None)
    monkeypatch.delitem(sys.modules, "flask_rpcenable.background.rq_backend", raising=False)
    app = build_app(tmp_path, RPCENABLE_BACKGROUND="rq")
    with pytest.raises(RuntimeError, match="needs the rq and redis packages"):
        _rpc().init_app(app)
