"""The per-call database work of authentication, made cheap.

Every authenticated call reads its user from the database (so that a user
deactivated, or given a new key, is refused on the very next call) and may
stamp ``last_login``. This module does both with statements built once:

- :class:`UserLookup` reads the active user's primary key, name and stored
  key with one Core ``SELECT`` built once, on a connection of the library's
  own pool (no ORM query, no statement to build per call), and only for a
  verified user hands the method an instance of the model, attached to the
  request's ``db.session`` without another query: the columns read are set,
  any other column loads from the database when first used, exactly as an
  expired attribute would;
- :class:`LastLoginStamper` writes ``last_login`` at most once per
  :data:`LAST_LOGIN_INTERVAL` seconds per user and process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import orm

from ..db import bookkeeping_engine, bookkeeping_write, utcnow

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

__all__ = ["LAST_LOGIN_INTERVAL", "FoundUser", "LastLoginStamper", "UserLookup"]

#: ``last_login`` is written at most once per this many seconds per user
#: (and per process): a call within a minute of the last stamp leaves it.
LAST_LOGIN_INTERVAL = 60.0
#: Users whose last stamp time is remembered; past it the memory is cleared
#: (the next call of each then writes once more).
_STAMPS_MAX = 100_000


@dataclass(frozen=True)
class FoundUser:
    """The row of an active user, before the signature is checked."""

    identity: tuple[Any, ...]
    username: str
    token: str


class UserLookup:
    """Reads active users of one model; builds the instance handed to a method.

    :param db: the Flask-SQLAlchemy object the model lives on.
    :param model: the API user model (a :class:`~.users.BaseAPIUser`).
    """

    def __init__(self, db: SQLAlchemy, model: type) -> None:
        self.db = db
        self.model = model
        self.mapper: orm.Mapper[Any] = sa.inspect(model)
        table_cols = [self.mapper.get_property_by_column(c) for c in self.mapper.primary_key]
        self._pk_keys = [prop.key for prop in table_cols]
        username = self.mapper.columns["username"]
        active = self.mapper.columns["active"]
        token = self.mapper.columns["api_key_encrypted"]
        self._columns = [*self.mapper.primary_key, username, token]
        self.statement = sa.select(*self._columns).where(
            username == sa.bindparam("username"), active.is_(True)
        )

    def find(self, username: str) -> FoundUser | None:
        """The active user called ``username``, read now, or ``None``.

        A Core statement built once (compiled once, from SQLAlchemy's cache)
        on the library's own pool: the app's engine events see it, and its
        errors are SQLAlchemy's.
        """
        with bookkeeping_engine(self.db).connect() as conn:
            row = conn.execute(self.statement, {"username": username}).first()
        if row is None:
            return None
        count = len(self._pk_keys)
        return FoundUser(tuple(row[:count]), row[count], row[count + 1])

    def instance(self, found: FoundUser) -> Any:
        """The model instance of ``found`` in the request's ``db.session`` (no query).

        When the session holds that user already, its instance is returned.
        """
        if not self.mapper.configured:
            orm.configure_mappers()  # what the first query would do
        session = self.db.session()
        key = self.mapper.identity_key_from_primary_key(list(found.identity))
        existing = session.identity_map.get(key)
        if existing is not None:
            return existing
        user = self.mapper.class_manager.new_instance()
        for name, value in zip(self._pk_keys, found.identity, strict=True):
            orm.attributes.set_committed_value(user, name, value)
        orm.attributes.set_committed_value(user, "username", found.username)
        orm.attributes.set_committed_value(user, "api_key_encrypted", found.token)
        orm.attributes.set_committed_value(user, "active", True)
        orm.make_transient_to_detached(user)
        session.add(user)
        return user


class LastLoginStamper:
    """Writes ``last_login`` of a user at most once per :data:`LAST_LOGIN_INTERVAL`."""

    def __init__(self) -> None:
        self._last: dict[tuple[type, tuple[Any, ...]], float] = {}
        self._lock = threading.Lock()
        self._statements: dict[type, Any] = {}

    def due(self, model: type, identity: tuple[Any, ...]) -> bool:
        """Whether this user's stamp is due now (then it counts as written)."""
        now = time.monotonic()
        key = (model, identity)
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < LAST_LOGIN_INTERVAL:
                return False
            if len(self._last) >= _STAMPS_MAX:
                self._last.clear()
            self._last[key] = now
        return True

    def stamp(self, db: SQLAlchemy, model: type, user: Any, what: str) -> None:
        """One ``UPDATE`` of ``last_login``, in a transaction of the library's own pool."""
        statement = self._statements.get(model)
        if statement is None:
            mapper = sa.inspect(model)
            where = [col == sa.bindparam(f"pk_{i}") for i, col in enumerate(mapper.primary_key)]
            statement = sa.update(model).where(*where).values(last_login=sa.bindparam("now"))
            self._statements[model] = statement
        identity = sa.inspect(user).identity or ()
        params = {f"pk_{i}": value for i, value in enumerate(identity)}
        params["now"] = utcnow()
        bookkeeping_write(db, lambda conn: conn.execute(statement, params), what)
