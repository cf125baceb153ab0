"""``flask rpc init-db`` and ``flask rpc prune-logs``."""

from __future__ import annotations

from typing import Any

import click
import sqlalchemy as sa
from flask import current_app

from .cli import rpc_cli
from .cli_util import older_than_option, retention_or_fail


def _states() -> list[Any]:
    from .extension import EXTENSION_KEY

    return list(current_app.extensions.get(EXTENSION_KEY, {}).values())


def model_tables() -> list[tuple[Any, sa.Table]]:
    """``(engine, table)`` for every model the components put on ``state.models``."""
    seen: set[int] = set()
    found: list[tuple[Any, sa.Table]] = []
    for state in _states():
        for model in vars(state.models).values():
            table = getattr(model, "__table__", None)
            if not isinstance(table, sa.Table) or id(table) in seen:
                continue
            seen.add(id(table))
            engine = state.db.engines[table.info.get("bind_key")]
            found.append((engine, table))
    return found


def create_tables() -> list[str]:
    """Create the missing tables of all flask-rpcenable models; return their names."""
    by_engine: dict[int, tuple[Any, list[sa.Table]]] = {}
    for engine, table in model_tables():
        by_engine.setdefault(id(engine), (engine, []))[1].append(table)
    created = []
    for engine, tables in by_engine.values():
        existing = set(sa.inspect(engine).get_table_names())
        tables[0].metadata.create_all(bind=engine, tables=tables)
        created += [t.name for t in tables if t.name not in existing]
    return created


@rpc_cli.command("init-db")
def init_db_command() -> None:
    """Create the tables of flask-rpcenable (call log, API users, jobs).

    Existing tables are left alone. Apps using Flask-Migrate get the same
    tables from ``flask db migrate`` instead.
    """
    created = create_tables()
    names = sorted(t.name for _, t in model_tables())
    for name in names:
        click.echo(f"{'created' if name in created else 'exists '}  {name}")


@rpc_cli.command("prune-logs")
@older_than_option(
    "Delete log rows older than this many days (default: RPCENABLE_LOG_RETENTION_DAYS)."
)
def prune_logs_command(days: float | None) -> None:
    """Delete old rows of the incoming and outgoing call logs."""
    from .calllog import get_logger

    logger = get_logger()
    if logger is None:
        raise click.ClickException("flask-rpcenable is not set up on this app.")
    days = retention_or_fail(days, logger.config.retention_days, "RPCENABLE_LOG_RETENTION_DAYS")
    incoming, outgoing = logger.prune(days)
    click.echo(
        f"Deleted {incoming} incoming and {outgoing} outgoing call(s) older than {days:g} days."
    )
