"""Errors of statements sent on a raw DBAPI connection, raised as SQLAlchemy raises them.

The call log's rows (on SQLite) and the API user read go on a raw
connection of the library's own pool, around SQLAlchemy's execution. Their
database errors still come out as SQLAlchemy's
:class:`~sqlalchemy.exc.DBAPIError` (so retries, outage reports and
"missing table" messages work as for any statement), and a connection the
database dropped is invalidated, so the pool opens a new one next time.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["dbapi_error"]


def dbapi_error(
    engine: sa.Engine,
    exc: Exception,
    statement: str,
    params: Any,
    connection: Any,
    cursor: Any,
    *,
    many: bool = False,
) -> sa.exc.DBAPIError:
    """SQLAlchemy's exception for the driver's ``exc``; invalidates a dropped ``connection``.

    :param connection: the pool's connection (``None`` when checking it out failed).
    :param many: the statement was sent with ``executemany``.
    """
    dialect = engine.dialect
    invalidated = False
    if connection is not None:
        try:
            invalidated = bool(dialect.is_disconnect(exc, connection, cursor))
        except Exception:  # noqa: BLE001  (a failing check is no reason to hide the error)
            invalidated = False
        if invalidated:
            connection.invalidate(exc)
    return sa.exc.DBAPIError.instance(  # type: ignore[return-value]
        statement,
        params,
        exc,
        dialect.loaded_dbapi.Error,
        hide_parameters=engine.hide_parameters,
        connection_invalidated=invalidated,
        dialect=dialect,
        ismulti=many,
    )
