"""SQLAlchemy models of the call log, defined on the app's Flask-SQLAlchemy object.

The models are built by :func:`define_log_models` for one
:class:`~flask_sqlalchemy.SQLAlchemy` object (once: the classes are cached per
object), so they live on that object's metadata: ``flask rpc init-db`` creates
them and Flask-Migrate/Alembic autogenerate sees them like the app's own.
The component puts them on ``state.models.IncomingCall`` and
``state.models.OutgoingCall``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from ..db import as_utc, id_column, once_per_db, utcnow

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

__all__ = [
    "INCOMING_TABLE",
    "OUTGOING_TABLE",
    "URL_LENGTH",
    "LogModels",
    "as_utc",
    "define_log_models",
    "utcnow",
]

#: Table names, prefixed so they do not collide with the app's tables.
INCOMING_TABLE = "rpcenable_incoming_call"
OUTGOING_TABLE = "rpcenable_outgoing_call"

#: Longest URL kept for an outgoing call.
URL_LENGTH = 2048


class LogModels(NamedTuple):
    """The two model classes defined on one ``db``."""

    IncomingCall: Any
    OutgoingCall: Any


@once_per_db
def define_log_models(db: SQLAlchemy) -> LogModels:
    """Define (once per ``db``) the ``IncomingCall`` and ``OutgoingCall`` models.

    :param db: the Flask-SQLAlchemy object whose metadata holds the tables.
    :returns: the two model classes; the same ones on every call for ``db``.
    """

    class IncomingCall(db.Model):  # type: ignore[name-defined,misc]
        """One call that reached the endpoint (one row per multicall sub-call too)."""

        __tablename__ = INCOMING_TABLE
        # Two indexes only, for what is read by a range or an equality: the
        # time (the dashboard, the admin's default order, pruning) and the
        # method with the time (the admin's method filter, the dashboard's
        # envelope test). Every index costs each logged call a page write;
        # ``ok``, ``username`` and ``request_id`` had one until issue 13
        # (tables created before keep theirs; see docs/logging.rst).
        __table_args__ = (
            sa.Index("ix_rpcenable_incoming_call_method_created", "method", "created_at"),
        )

        id = id_column()
        created_at = sa.Column(
            sa.DateTime(timezone=True), nullable=False, index=True, default=utcnow
        )
        method = sa.Column(sa.String(255), nullable=False)
        version = sa.Column(sa.Integer, nullable=True)
        protocol = sa.Column(sa.String(16), nullable=False, default="xmlrpc")
        path = sa.Column(sa.String(255), nullable=True)
        params = sa.Column(sa.Text, nullable=True)
        result = sa.Column(sa.Text, nullable=True)
        ok = sa.Column(sa.Boolean, nullable=False, default=True)
        fault_code = sa.Column(sa.Integer, nullable=True)
        fault_string = sa.Column(sa.Text, nullable=True)
        traceback = sa.Column(sa.Text, nullable=True)
        duration_ms = sa.Column(sa.Float, nullable=False, default=0.0)
        remote_addr = sa.Column(sa.String(45), nullable=True)
        username = sa.Column(sa.String(255), nullable=True)
        request_size = sa.Column(sa.Integer, nullable=True)
        #: Position inside a ``system.multicall``; ``None`` for top-level calls.
        multicall_index = sa.Column(sa.Integer, nullable=True)
        #: Shared by all rows written for one HTTP request (a multicall and
        #: its sub-calls).
        request_id = sa.Column(sa.String(32), nullable=True)

        def __repr__(self) -> str:
            return f"<IncomingCall {self.id} {self.method!r} ok={self.ok}>"

    class OutgoingCall(db.Model):  # type: ignore[name-defined,misc]
        """One call made with the logged XML-RPC client."""

        __tablename__ = OUTGOING_TABLE

        id = id_column()
        created_at = sa.Column(
            sa.DateTime(timezone=True), nullable=False, index=True, default=utcnow
        )
        url = sa.Column(sa.String(URL_LENGTH), nullable=False)
        method = sa.Column(sa.String(255), nullable=False, index=True)
        params = sa.Column(sa.Text, nullable=True)
        response = sa.Column(sa.Text, nullable=True)
        ok = sa.Column(sa.Boolean, nullable=False, default=True, index=True)
        fault_code = sa.Column(sa.Integer, nullable=True)
        fault_string = sa.Column(sa.Text, nullable=True)
        exception = sa.Column(sa.Text, nullable=True)
        duration_ms = sa.Column(sa.Float, nullable=False, default=0.0)

        def __repr__(self) -> str:
            return f"<OutgoingCall {self.id} {self.method!r} ok={self.ok}>"

    return LogModels(IncomingCall, OutgoingCall)
