"""The ``flask rpc`` command group and what its commands share.

The extension adds :data:`rpc_cli` to the app's CLI, with ``flask rpc
init-db`` (the tables of every component); each component adds its own
commands to it in its ``init_app`` (``flask rpc prune-logs``, ``users ...``,
``worker``, ``prune-jobs``, ``call``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from .state import app_states

__all__ = [
    "create_tables",
    "init_db_command",
    "model_tables",
    "older_than_option",
    "retention_or_fail",
    "rpc_cli",
]

rpc_cli = AppGroup("rpc", help="flask-rpcenable: RPC logs, API users, workers and calls.")



def older_than_option(help_text: str) -> Callable[[Any], Any]:
    """The ``--older-than DAYS`` option (a positive number, passed as ``days``)."""
    return click.option(
        "--older-than",
        "days",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help=help_text,
    )


def retention_or_fail(days: float | None, retention: float | None, setting: str) -> float:
    """``days`` if given, else the retention setting's value.

    :raises click.ClickException: when both are ``None`` (the setting keeps
        rows forever and no ``--older-than`` was given).
    """
    if days is None:
        days = retention
    if days is None:
        raise click.ClickException(f"{setting} is None (keep forever): give --older-than DAYS.")
    return days

def model_tables() -> list[tuple[Any, sa.Table]]:
    """``(engine, table)`` for every model the components put on ``state.models``."""
    seen: set[int] = set()
    found: list[tuple[Any, sa.Table]] = []
    for state in app_states(current_app):
        for model in state.models.defined():
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


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the tables of flask-rpcenable (call log, API users, jobs).

    Existing tables are left alone. Apps using Flask-Migrate get the same
    tables from ``flask db migrate`` instead.
    """
    created = create_tables()
    names = sorted(t.name for _, t in model_tables())
    for name in names:
        click.echo(f"{'created' if name in created else 'exists '}  {name}")
