"""The :class:`RPCEnable` Flask extension."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from flask import Blueprint, Flask
from sqlalchemy import event
from sqlalchemy.pool import QueuePool

from . import admin, auth, background, calllog, client
from .auth.marker import mark_auth
from .background import postpone
from .cli import init_db_command, rpc_cli
from .dispatch import Dispatcher
from .registry import REGISTERED_ATTR, Registry
from .settings import Settings, warn_unknown_settings
from .state import EXTENSION_KEY, RPCState, before_request_until_done
from .views import make_blueprint

if TYPE_CHECKING:
    from flask_caching import Cache
    from flask_sqlalchemy import SQLAlchemy

F = TypeVar("F", bound=Callable[..., Any])


class RPCEnable:
    """Expose registered functions over XML-RPC on a Flask app.

    :param app: the app to set up now; or call :meth:`init_app` later.
    :param db: the app's :class:`~flask_sqlalchemy.SQLAlchemy` object, used
        for the call log, API users and job records. Without one, the app's
        own Flask-SQLAlchemy object is used if it was set up before
        :meth:`init_app`, otherwise an embedded database of the extension's
        own (``RPCENABLE_DATABASE_URI``: SQLite in the instance folder).
    :param cache: a :class:`~flask_caching.Cache` shared by all workers, for
        replay protection. Without one, the ``RPCENABLE_CACHE_*`` settings
        configure one.
    :param url_prefix: where the endpoint lives; overrides
        ``RPCENABLE_URL_PREFIX``. Give two objects different prefixes to run a
        public and an internal API on one app.
    :param name: the blueprint name; defaults to ``"rpcenable"`` and must
        differ between two objects on one app.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: SQLAlchemy | None = None,
        cache: Cache | None = None,
        url_prefix: str | None = None,
        name: str | None = None,
    ) -> None:
        self.registry = Registry()
        self._db = db
        self._cache = cache
        self._url_prefix = url_prefix
        self.name = name or "rpcenable"
        if app is not None:
            self.init_app(app)

    # -- setup ---------------------------------------------------------------

    def init_app(
        self,
        app: Flask,
        *,
        db: SQLAlchemy | None = None,
        cache: Cache | None = None,
    ) -> None:
        """Register the endpoint, the components and the CLI on ``app``.

        :raises RuntimeError: when this object is already set up on ``app``,
            when another object uses the same blueprint name, or on an
            invalid setting.
        """
        states: dict[RPCEnable, RPCState] = app.extensions.setdefault(EXTENSION_KEY, {})
        if self in states:
            raise RuntimeError(
                "This RPCEnable object is already set up on this app; call init_app once per app."
            )
        if any(state.blueprint_name == self.name for state in states.values()):
            raise RuntimeError(
                f"Another RPCEnable object on this app is named {self.name!r}: give the second "
                "one RPCEnable(name=..., url_prefix=...)."
            )
        settings = Settings.from_app(app, url_prefix=self._url_prefix)
        if any(s.settings.url_prefix == settings.url_prefix for s in states.values()):
            raise RuntimeError(
                f"Another RPCEnable object on this app already serves {settings.url_prefix!r}."
            )
        resolved_db, embedded = _resolve_db(app, db or self._db)
        state = RPCState(
            registry=self.registry,
            settings=settings,
            dispatcher=Dispatcher(self.registry, settings),
            db=resolved_db,
            cache=cache or self._cache,
            blueprint_name=self.name,
            primary=not states,
            embedded=embedded,
        )
        states[self] = state
        blueprint = make_blueprint(state)
        app.register_blueprint(blueprint, url_prefix=settings.url_prefix)
        _exempt_from_csrf(app, blueprint)
        # The components, in order: each reads its settings, defines its
        # models, plugs into the dispatcher and adds its ``flask rpc`` commands;
        # the admin comes last, with a view for what the others defined.
        calllog.init_app(app, state)
        auth.init_app(app, state)
        background.init_app(app, state)
        client.init_app(app, state)
        admin.init_app(app, state)
        if state.embedded:
            # Our own database: its tables are ours to create, so that logging
            # and API users work with no setup step.
            with app.app_context():
                state.db.create_all()
        if state.primary:
            rpc_cli.add_command(init_db_command)
            app.cli.add_command(rpc_cli)
            warn_unknown_settings(app)

    # -- registration --------------------------------------------------------

    @overload
    def register(self, func: F, /) -> F: ...

    @overload
    def register(
        self, func: None = None, /, *, name: str | None = None, version: int | None = None
    ) -> Callable[[F], F]: ...

    def register(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        version: int | None = None,
    ) -> Any:
        """Expose a function, bare (``@rpc.register``) or called.

        :param name: the method name on the wire (dotted, e.g. ``"math.add"``);
            defaults to the function's name.
        :param version: expose it only at ``<prefix>/v<version>/``; ``None``
            puts it in the default namespace at ``<prefix>/``.
        :returns: the function itself, unchanged and still callable.
        :raises ValueError: if the name is taken in that namespace.
        """

        def decorator(f: F) -> F:
            self.registry.add(f, name=name, version=version)
            with contextlib.suppress(AttributeError, TypeError):  # builtins and the like
                setattr(f, REGISTERED_ATTR, True)
            return f

        return decorator if func is None else decorator(func)

    def auth(self, func: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """Require authentication for a function; see ``docs/auth.rst``.

        Put it *below* ``@rpc.register``. The function receives the API user
        as its first argument.
        """
        def decorator(f: F) -> F:
            if getattr(f, REGISTERED_ATTR, False):
                raise TypeError(
                    f"{f.__qualname__} is already registered: put @rpc.auth below @rpc.register"
                )
            return mark_auth(f, **options)

        return decorator if func is None else decorator(func)

    @staticmethod
    def postpone(func: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """Run a function's calls in the background: the same as
        :func:`flask_rpcenable.postpone`, offered here for convenience."""
        return postpone(func, **options) if func is not None else postpone(**options)

    # -- access --------------------------------------------------------------

    def state(self, app: Flask) -> RPCState:
        """This object's state on ``app``.

        :raises RuntimeError: if :meth:`init_app` was not called for ``app``.
        """
        try:
            return app.extensions[EXTENSION_KEY][self]
        except KeyError:
            raise RuntimeError(
                "This RPCEnable object is not set up on this app: call rpc.init_app(app)."
            ) from None

    def __repr__(self) -> str:
        return f"<RPCEnable {self.name!r}>"


def _resolve_db(app: Flask, db: SQLAlchemy | None) -> tuple[SQLAlchemy, bool]:
    """The given db, the app's own Flask-SQLAlchemy object, or an embedded one.

    :returns: the database and whether it is the extension's embedded one.
    """
    if db is not None:
        if app.extensions.get("sqlalchemy") is not db:
            raise RuntimeError(
                "RPCEnable(db=db) needs db.init_app(app) to be called before rpc.init_app(app)."
            )
        return db, False
    existing = app.extensions.get("sqlalchemy")
    if existing is not None:
        return existing, False
    for state in app.extensions.get(EXTENSION_KEY, {}).values():
        return state.db, state.embedded
    return _embedded_db(app), True


def _embedded_db(app: Flask) -> SQLAlchemy:
    """A Flask-SQLAlchemy object of the extension's own, on ``RPCENABLE_DATABASE_URI``.

    It leaves the app's ``SQLALCHEMY_*`` settings and its ``sqlalchemy``
    extension slot as they were, so the app can still set up a database of
    its own later (its tables then live apart from the RPC ones: pass
    ``db=`` to keep them together).
    """
    from flask_sqlalchemy import SQLAlchemy

    os.makedirs(app.instance_path, exist_ok=True)
    uri = app.config["RPCENABLE_DATABASE_URI"]
    embedded = SQLAlchemy()
    keys = ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_BINDS")
    saved = {key: app.config[key] for key in keys if key in app.config}
    app.config.update(SQLALCHEMY_DATABASE_URI=uri, SQLALCHEMY_BINDS={})
    teardowns = list(app.teardown_appcontext_funcs)
    try:
        embedded.init_app(app)
    finally:
        for key in keys:
            app.config.pop(key, None)
        app.config.update(saved)
        if app.extensions.get("sqlalchemy") is embedded:
            del app.extensions["sqlalchemy"]
    added = [f for f in app.teardown_appcontext_funcs if f not in teardowns]
    _cheap_session_teardown(app, embedded, added)
    with app.app_context():
        engine = embedded.engine
        if engine.dialect.name == "sqlite" and isinstance(engine.pool, QueuePool):
            event.listen(engine, "connect", _tune_embedded_sqlite)
    return embedded


def _cheap_session_teardown(app: Flask, embedded: SQLAlchemy, added: list[Any]) -> None:
    """Skip Flask-SQLAlchemy's session teardown for the embedded database when there is no session.

    Most requests (every unauthenticated RPC call) never open a session on
    the embedded database, yet its teardown looks the session up, and
    removes nothing, at the end of each one. ``added`` is what
    ``embedded.init_app`` added to ``app.teardown_appcontext_funcs``: when that
    is one function (Flask-SQLAlchemy's session teardown), it is replaced by
    one that calls it only when the session registry holds a session for
    the current app context (``ScopedRegistry.has()``). Otherwise nothing
    changes.
    """
    if len(added) != 1:  # a Flask-SQLAlchemy that tears down otherwise: keep it
        return
    original = added[0]
    registry = embedded.session.registry

    def teardown_session_if_any(exc: BaseException | None) -> None:
        if registry.has():
            original(exc)

    funcs = app.teardown_appcontext_funcs
    funcs[funcs.index(original)] = teardown_session_if_any


#: Milliseconds a connection to the embedded SQLite file waits for another
#: writer's lock before "database is locked" (a bookkeeping write then tries
#: once more).
SQLITE_BUSY_TIMEOUT_MS = 10_000


#: Page size of a new embedded SQLite file: each commit of log rows writes
#: its table page and its two index pages whole to the WAL, and 2 KB pages
#: halve that (a one-row commit measured about 25 us instead of 30 us).
SQLITE_PAGE_SIZE = 2048


def _tune_embedded_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL journal, normal sync, a busy timeout and small pages for an embedded SQLite file.

    Each request's log rows are a commit of their own; in SQLite's default
    rollback-journal mode with full sync that costs several milliseconds
    per call. WAL lets readers (the admin) work beside the writer, and
    ``synchronous=NORMAL`` is safe in WAL mode (a power cut may lose the last
    commits, never corrupt the file). Several worker processes write to the
    one file: ``busy_timeout`` makes a writer wait its turn
    (:data:`SQLITE_BUSY_TIMEOUT_MS`) instead of failing. The page size
    (:data:`SQLITE_PAGE_SIZE`) applies only to a file that is still empty;
    an existing file keeps its own, since a WAL file's pages cannot change size.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE:d}")  # before WAL: a new file only
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _exempt_from_csrf(app: Flask, blueprint: Blueprint) -> None:
    """Keep Flask-WTF's CSRFProtect off the RPC endpoint, whenever it is set up.

    Now, for a CSRFProtect set up before us; otherwise at the first request
    (its own hook runs after ours), when the app is complete. After that
    request no hook of ours runs any more.
    """

    def exempt() -> bool:
        csrf = app.extensions.get("csrf")
        if csrf is not None:
            csrf.exempt(blueprint)  # a set: exempting twice changes nothing
        return True

    if app.extensions.get("csrf") is not None:
        exempt()
    else:
        before_request_until_done(app, exempt)
