"""The per-call database work of authentication, made cheap.

Every authenticated request reads its user from the database (so that a
user deactivated, or given a new key, is refused on the very next request;
the calls of one multicall or batch share the read) and may stamp
``last_login``. This module does both with statements built once:

- :class:`UserLookup` reads the active user's primary key, name and stored
  key with one ``SELECT`` on the library's own pool (on SQLite compiled
  once and run on a raw connection, :mod:`.prepared`; on a database server
  in autocommit mode), and only for a
  verified user hands the method an instance of the model, attached to the
  request's ``db.session`` without another query: the columns read are set,
  any other column loads from the database when first used, exactly as for
  an instance a query loaded with only those columns. With
  ``RPCENABLE_AUTH_USER_CACHE_SECONDS`` set, the row of an active user is
  reused for that long (:mod:`.usercache`);
- :class:`LastLoginStamper` writes ``last_login`` at most once per
  :data:`LAST_LOGIN_INTERVAL` seconds per user and process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import attributes

from ..bookkeeping import (
    autocommit_engine,
    bookkeeping_attempts,
    bookkeeping_engine,
    bookkeeping_write,
)
from ..db import utcnow
from .prepared import PreparedSelect, needs_core
from .usercache import TimedCache

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

__all__ = ["LAST_LOGIN_INTERVAL", "FoundUser", "LastLoginStamper", "UserLookup"]

#: ``last_login`` is written at most once per this many seconds per user
#: (and per process): a call within a minute of the last stamp leaves it.
LAST_LOGIN_INTERVAL = 60.0
#: Users whose last stamp time is remembered; past it the memory is cleared
#: (the next call of each then writes once more).
_STAMPS_MAX = 100_000


@dataclass(frozen=True, slots=True)
class FoundUser:
    """The row of an active user, before the signature is checked.

    ``remembered`` is true when it came from the opt-in user cache, or from
    an earlier call of the same request, rather than from the database just
    now (a signature that does not match it then reads the row again).
    """

    identity: tuple[Any, ...]
    username: str
    token: str
    remembered: bool = False


class UserLookup:
    """Reads active users of one model; builds the instance handed to a method.

    :param db: the Flask-SQLAlchemy object the model lives on.
    :param model: the API user model (a :class:`~.users.BaseAPIUser`).
    :param cache_seconds: how long a found row may be reused (0: never, the default).
    """

    def __init__(self, db: SQLAlchemy, model: type, cache_seconds: float = 0.0) -> None:
        self.db = db
        self.model = model
        self.mapper: orm.Mapper[Any] = sa.inspect(model)
        key_of = self.mapper.get_property_by_column
        username = self.mapper.columns["username"]
        active = self.mapper.columns["active"]
        token = self.mapper.columns["api_key_encrypted"]
        self._columns = [*self.mapper.primary_key, username, token]
        self._pk_count = len(self.mapper.primary_key)
        #: Attribute keys of the columns read, then of ``active`` (known to be true).
        self._keys = tuple(key_of(c).key for c in [*self._columns, active])
        self.statement = sa.select(*self._columns).where(
            username == sa.bindparam("username"), active.is_(True)
        )
        self._prepared: dict[sa.Dialect, PreparedSelect] = {}
        #: The library's own pool on the app's database, looked up on first use.
        self._engine: sa.Engine | None = None
        self.cache: TimedCache[FoundUser] | None = (
            TimedCache(cache_seconds) if cache_seconds > 0 else None
        )

    def find(self, username: str, *, fresh: bool = False) -> FoundUser | None:
        """The active user called ``username``, or ``None``.

        Read from the database now, unless the opt-in cache holds a row read
        less than ``cache_seconds`` ago (and ``fresh`` is false).
        """
        cache = self.cache
        if cache is not None and not fresh:
            remembered = cache.get(username)
            if remembered is not None:
                return remembered
        row = self._read(username)
        if row is None:
            if cache is not None:
                cache.forget(username)
            return None
        count = self._pk_count
        found = FoundUser(tuple(row[:count]), row[count], row[count + 1])
        if cache is not None:
            cache.put(username, replace(found, remembered=True))
        return found

    def _read(self, username: str) -> tuple[Any, ...] | None:
        """The row, from the library's own pool.

        On SQLite, SQL compiled once runs on the raw connection. A database
        server gets the Core statement in autocommit mode (no ``BEGIN``, and
        no ``ROLLBACK`` when the connection goes back: fewer round trips),
        tried once more on a connection the server dropped. An engine that
        echoes SQL gets the Core statement too, so that the echo shows it.
        """
        engine = self._engine
        if engine is None:
            engine = self._engine = bookkeeping_engine(self.db)
        if engine.dialect.name != "sqlite" or needs_core(engine):
            found = bookkeeping_attempts(
                self.db, lambda e: self._read_core(e, username), autocommit_engine(engine)
            )
            return None if found is None else tuple(found)
        prepared = self._prepared.get(engine.dialect)
        if prepared is None:
            types = [column.type for column in self._columns]
            prepared = PreparedSelect(self.statement, types, engine.dialect)
            self._prepared[engine.dialect] = prepared
        return prepared.first(engine, {"username": username})

    def _read_core(self, engine: sa.Engine, username: str) -> Any:
        with engine.connect() as conn:
            return conn.execute(self.statement, {"username": username}).first()

    def instance(self, found: FoundUser) -> Any:
        """The model instance of ``found`` in the request's ``db.session`` (no query).

        When the session holds that user already, its instance is returned.
        Otherwise a new one gets the columns read as its committed state
        (``active`` is true) and joins the session as a detached instance
        does (``make_transient_to_detached``, ``Session.add``): nothing to
        write, and every other column loads from the database when first
        used.
        """
        mapper = self.mapper
        if not mapper.configured:
            orm.configure_mappers()  # what the first query would do
        session = self.db.session.registry()  # the request's session, made on first use
        key = mapper.identity_key_from_primary_key(found.identity)
        existing = session.identity_map.get(key)
        if existing is not None:
            return existing
        user = mapper.class_manager.new_instance()
        values = (*found.identity, found.username, found.token, True)
        for name, value in zip(self._keys, values, strict=True):
            attributes.set_committed_value(user, name, value)
        orm.make_transient_to_detached(user)  # the columns not set load when first used
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
        last = self._last.get(key)
        if last is not None and now - last < LAST_LOGIN_INTERVAL:
            return False  # the common case, decided without the lock
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
