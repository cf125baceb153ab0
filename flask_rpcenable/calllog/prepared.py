"""Log rows sent with SQL compiled once, instead of a statement executed through SQLAlchemy's cache.

Executing a Core ``INSERT`` costs SQLAlchemy a cache lookup and the setup
of an execution context on every row, more than the database spends on
the row itself on a local SQLite file. A :class:`PreparedInsert` holds the
statement's SQL for one dialect and one tuple of columns, and the columns'
bind processors (``DateTime`` to text on SQLite, and the like); rows are
plain tuples in that column order.

On SQLite (the standard library's driver), all the rows of a write are
sent on a raw DBAPI connection of the engine's pool: ``BEGIN IMMEDIATE``,
one ``executemany`` and ``COMMIT``, with no SQLAlchemy ``Connection`` in
between (its checkout and transaction cost about as much as SQLite's own
work on the row). A database error is raised as SQLAlchemy raises it (a
:class:`~sqlalchemy.exc.DBAPIError` around the driver's error, the pooled
connection invalidated when the dialect calls it a disconnect), so that
retries and failure reports work as for any bookkeeping write. Other
databases go through a SQLAlchemy ``Connection``
(:meth:`PreparedInsert.execute`): there the round trips to the server
cost far more than SQLAlchemy, and SQLAlchemy sends many rows in one
multi-row ``INSERT`` where the driver's ``executemany`` would make a round
trip per row.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from ..dbapi import dbapi_error

__all__ = ["PreparedInsert"]

#: A row of a log table: its values in the order of the :class:`PreparedInsert`'s keys.
Row = tuple[Any, ...]


class PreparedInsert:
    """An ``INSERT`` compiled once for a dialect and a tuple of columns, with bind processors."""

    def __init__(self, statement: sa.Insert, dialect: sa.Dialect, keys: tuple[str, ...]) -> None:
        self.statement = statement
        self.dialect = dialect
        self.keys = keys
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        #: The bind names in the order the SQL takes them.
        self.order: tuple[str, ...] = tuple(compiled.positiontup or ()) if self.positional else keys
        if set(self.order) != set(keys):
            # A column with a default that the rows do not give: SQLAlchemy
            # would compute it on execution, the raw SQL cannot.
            raise ValueError(f"the rows must give every column the INSERT takes: {self.order}")
        position = {key: i for i, key in enumerate(keys)}
        self._pick: Callable[[Row], Sequence[Any]] = _picker([position[k] for k in self.order])
        columns = statement.table.c
        self._processors = tuple(
            (i, proc)
            for i, key in enumerate(self.order)
            if (proc := columns[key].type.dialect_impl(dialect).bind_processor(dialect))
        )
        #: Whether the rows go on a raw connection (:meth:`write_local`).
        self.local = dialect.name == "sqlite" and dialect.driver == "pysqlite"

    def parameters(self, rows: Sequence[Row]) -> list[Any]:
        """The rows as the driver takes them: in the SQL's order or by name, processors applied."""
        pick, processors = self._pick, self._processors
        positional, order = self.positional, self.order
        out: list[Any] = []
        for row in rows:
            values = list(pick(row))
            for i, process in processors:
                value = values[i]
                if value is not None:
                    values[i] = process(value)
            out.append(values if positional else dict(zip(order, values, strict=True)))
        return out

    def execute(self, conn: sa.Connection, rows: Sequence[Row]) -> None:
        """Insert ``rows`` on a SQLAlchemy connection, in its transaction."""
        if len(rows) == 1:
            # The SQL as it is: no statement cache lookup, no compilation.
            conn.exec_driver_sql(self.sql, self.parameters(rows)[0])
        else:  # SQLAlchemy batches them (insertmanyvalues where the driver would not)
            keys = self.keys
            conn.execute(self.statement, [dict(zip(keys, row, strict=True)) for row in rows])

    def write_alone(self, engine: sa.Engine, rows: Sequence[Row]) -> None:
        """Insert ``rows`` with one statement on a connection of ``engine``.

        For an autocommit engine: the statement commits on its own, with no
        ``BEGIN`` and ``COMMIT`` around it.
        """
        with engine.connect() as conn:
            self.execute(conn, rows)

    def write_local(self, engine: sa.Engine, parameters: list[Any]) -> None:
        """Insert rows (:meth:`parameters`) in a transaction of their own on a raw connection.

        ``BEGIN IMMEDIATE`` takes SQLite's write lock at once (waiting its
        busy timeout for another writer), one ``executemany`` sends every
        row and one ``COMMIT`` ends it. Whatever the driver's transaction
        setting, it is one transaction.
        """
        fairy: Any = None
        cursor: Any = None
        try:
            fairy = engine.pool.connect()
            connection = fairy.dbapi_connection
            cursor = connection.cursor()
            if not connection.in_transaction:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(self.sql, parameters)
            connection.commit()
        except engine.dialect.loaded_dbapi.Error as exc:
            raise dbapi_error(engine, exc, self.sql, parameters, fairy, cursor, many=True) from exc
        finally:
            if cursor is not None:
                cursor.close()
            if fairy is not None:
                # Back to the pool, which rolls back whatever a failure left open.
                fairy.close()


def _picker(indexes: list[int]) -> Callable[[Row], Sequence[Any]]:
    """A function returning a row's values at ``indexes``, in that order."""
    if len(indexes) == 1:
        only = indexes[0]
        return lambda row: (row[only],)
    return operator.itemgetter(*indexes)
