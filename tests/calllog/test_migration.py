"""Flask-Migrate (Alembic) autogenerate sees the call-log tables: a real migration."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from live import build_app

from flask_rpcenable import RPCEnable

flask_migrate = pytest.importorskip("flask_migrate")


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """Undo Alembic's ``fileConfig`` (it disables existing loggers, app loggers too)."""
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    loggers = {
        name: (logger.disabled, logger.level, list(logger.handlers), logger.propagate)
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    for name, logger in logging.root.manager.loggerDict.items():
        if not isinstance(logger, logging.Logger):
            continue
        if name in loggers:
            logger.disabled, level, handlers, logger.propagate = loggers[name]
            logger.setLevel(level)
            logger.handlers[:] = handlers
        else:  # made by fileConfig: its handlers write to this test's captured stderr
            logger.disabled = False
            logger.handlers.clear()


def _app(tmp_path: Path, url: str) -> tuple[Any, SQLAlchemy]:
    app = build_app(tmp_path, SQLALCHEMY_DATABASE_URI=url, RPCENABLE_LOG_INCOMING=True)
    db = SQLAlchemy()

    class Article(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "article"
        id = sa.Column(sa.Integer, primary_key=True)

    db.init_app(app)
    flask_migrate.Migrate(app, db)
    RPCEnable(app, db=db)
    return app, db


# Flask-Migrate's generated env.py tries Flask-SQLAlchemy 2's get_engine() first.
@pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")
def test_autogenerate_and_upgrade(tmp_path: Path, db_url: str, keep_logging: None) -> None:
    app, db = _app(tmp_path, db_url)
    directory = str(tmp_path / "migrations")
    try:
        with app.app_context():
            flask_migrate.init(directory=directory)
            flask_migrate.migrate(directory=directory, message="initial")
            [script] = (tmp_path / "migrations" / "versions").glob("*.py")
            text = script.read_text()
            assert "op.create_table('rpcenable_incoming_call'" in text
            assert "op.create_table('rpcenable_outgoing_call'" in text
            assert "op.create_table('article'" in text
            assert "ix_rpcenable_incoming_call_created_at" in text
            flask_migrate.upgrade(directory=directory)
            inspector = sa.inspect(db.engine)
            tables = set(inspector.get_table_names())
            assert {"rpcenable_incoming_call", "rpcenable_outgoing_call", "article"} <= tables
            columns = {c["name"] for c in inspector.get_columns("rpcenable_incoming_call")}
            assert {"created_at", "method", "params", "duration_ms", "remote_addr"} <= columns
            # A second autogenerate finds nothing to do: the models match the tables.
            flask_migrate.migrate(directory=directory, message="nothing")
            assert len(list((tmp_path / "migrations" / "versions").glob("*.py"))) == 1
            flask_migrate.downgrade(directory=directory, revision="base")
            assert "rpcenable_incoming_call" not in sa.inspect(db.engine).get_table_names()
    finally:
        with app.app_context():
            db.engine.dispose()
