"""Log rows sent with SQL compiled once, instead of a statement executed through SQLAlchemy's cache.

Executing a Core ``INSERT`` costs SQLAlchemy a cache lookup and the setup
of an execution context on every row, more than the database spends on
the row itself on a local SQLite file. A :class:`PreparedInsert` holds the
statement's SQL for one dialect and one set of columns and the columns'
bind processors (``DateTime`` to text on SQLite, and the like), and sends
a row with :meth:`sqlalchemy.engine.Connection.exec_driver_sql`: the
engine's events and error handling stay as they are.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["PreparedInsert"]


class PreparedInsert:
    """An ``INSERT`` compiled once for a dialect and a set of columns, with its bind processors."""

    def __init__(self, statement: sa.Insert, dialect: sa.Dialect, keys: tuple[str, ...]) -> None:
        self.dialect = dialect
        self.keys = keys
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = str(compiled)
        columns = statement.table.c
        self.processors = {
            key: proc
            for key in keys
            if (proc := columns[key].type.dialect_impl(dialect).bind_processor(dialect))
        }
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )

    def execute(self, conn: sa.Connection, row: dict[str, Any]) -> None:
        processors = self.processors
        if self.order is None:
            values = {
                key: processors[key](value) if value is not None and key in processors else value
                for key, value in row.items()
            }
            conn.exec_driver_sql(self.sql, values)
        else:
            conn.exec_driver_sql(
                self.sql,
                tuple(
                    processors[key](value)
                    if (value := row[key]) is not None and key in processors
                    else value
                    for key in self.order
                ),
            )
