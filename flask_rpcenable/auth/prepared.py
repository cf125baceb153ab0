"""A ``SELECT`` compiled once and run on a raw DBAPI connection of a pool.

Executing even a cached Core statement costs SQLAlchemy a
:class:`~sqlalchemy.engine.Connection`, a cache lookup and an execution
context on every call: on a local SQLite file that is several times what
the database spends on the one-row read of an API user. A
:class:`PreparedSelect` keeps the statement's SQL for one dialect, checks a
connection out of the engine's pool, runs the SQL on its DBAPI cursor and
hands the connection back (the pool resets it, as for any other use).

What SQLAlchemy would do around it is kept: a DBAPI error is raised as
SQLAlchemy's :class:`~sqlalchemy.exc.DBAPIError`, and a connection the
database dropped is invalidated, so the pool opens a fresh one next time.
SQL echo needs SQLAlchemy's own execution: the caller checks
:func:`needs_core` and takes the Core path when it is true. Statement
events of the engine do not see the raw path (the library's bookkeeping
engine is its own, apart from the app's ``db.engine``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from ..dbapi import dbapi_error

__all__ = ["PreparedSelect", "needs_core"]


def needs_core(engine: sa.Engine) -> bool:
    """Whether ``engine`` echoes SQL (``echo``, or the ``sqlalchemy.engine`` logger at INFO).

    Then the statement goes through SQLAlchemy's
    :class:`~sqlalchemy.engine.Connection`, so that the echo shows it. The
    raw path is not seen by statement events (``before_cursor_execute``) of
    the library's own engine; pool events see its checkout as any other.
    """
    return bool(engine.echo) or engine.logger.isEnabledFor(logging.INFO)


class PreparedSelect:
    """A ``SELECT`` compiled once for one dialect, with its bind and result processors.

    :param statement: the statement; its bound parameters are given by name
        to :meth:`first`.
    :param types: the types of its selected columns, in order.
    :param dialect: the dialect to compile for.
    """

    def __init__(
        self,
        statement: sa.Select[Any],
        types: Sequence[sa.types.TypeEngine[Any]],
        dialect: sa.Dialect,
    ) -> None:
        self.dialect = dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        #: The values of the statement's own binds, by name; those given to
        #: :meth:`first` are placeholders until then.
        required = {name: None for name, bind in compiled.binds.items() if bind.required}
        self._defaults: dict[str, Any] = dict(
            compiled.construct_params(required, escape_names=False)
        )
        #: A bind's name as a driver taking names sees it (a few characters are escaped).
        self._escaped: dict[str, str] = dict(compiled.escaped_bind_names or {})
        self._order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        self._binds: dict[str, Callable[[Any], Any]] = {
            name: proc
            for name, bind in compiled.binds.items()
            if (proc := bind.type.dialect_impl(dialect).bind_processor(dialect))
        }
        self._types = list(types)
        #: Per column, its result processor or ``None``; known after the first row
        #: (an empty list when no column needs one).
        self._results: list[Callable[[Any], Any] | None] | None = None
        self._error: type[Exception] = dialect.loaded_dbapi.Error

    def params(self, values: dict[str, Any]) -> Any:
        """The DBAPI parameters for ``values`` (a tuple or a dict, as the driver takes)."""
        merged = {**self._defaults, **values}
        for name, proc in self._binds.items():
            if merged[name] is not None:
                merged[name] = proc(merged[name])
        if self._order is not None:
            return tuple(merged[name] for name in self._order)
        if self._escaped:
            return {self._escaped.get(name, name): value for name, value in merged.items()}
        return merged

    def first(self, engine: sa.Engine, values: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row for ``values``, read on a connection of ``engine``'s pool.

        :raises sqlalchemy.exc.DBAPIError: when the database fails.
        """
        params = self.params(values)
        connection: Any = None
        cursor: Any = None
        try:
            connection = engine.raw_connection()
            cursor = connection.cursor()
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
            if row is not None and self._results is None:
                self._results = self._processors(cursor.description)
            cursor.close()
        except self._error as exc:
            raise dbapi_error(engine, exc, self.sql, params, connection, cursor) from exc
        finally:
            if connection is not None:
                connection.close()
        if row is None:
            return None
        results = self._results
        if not results:
            return tuple(row)
        return tuple(
            proc(value) if proc is not None and value is not None else value
            for proc, value in zip(results, row, strict=True)
        )

    def _processors(self, description: Any) -> list[Callable[[Any], Any] | None]:
        dialect = self.dialect
        found = [
            kind.dialect_impl(dialect).result_processor(dialect, column[1])
            for kind, column in zip(self._types, description, strict=True)
        ]
        return found if any(proc is not None for proc in found) else []
