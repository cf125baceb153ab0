"""What one :class:`~flask_rpcenable.RPCEnable` keeps per app, and how to find it.

``init_app`` stores one :class:`RPCState` per RPCEnable object in
``app.extensions["rpcenable"]`` (a dict keyed by the object). The components
fill in their own typed fields; nothing is kept under string keys. The first
object set up on an app is its *primary* one: it owns the parts an app has
once (the admin, the ``flask rpc`` commands, background jobs).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask

if TYPE_CHECKING:
    from flask_caching import Cache
    from flask_sqlalchemy import SQLAlchemy

    from .admin import AdminState
    from .background.core import Background
    from .calllog.recorder import CallLogger
    from .dispatch import Dispatcher
    from .registry import Registry
    from .settings import Settings

__all__ = [
    "EXTENSION_KEY",
    "Models",
    "RPCState",
    "app_states",
    "before_request_until_done",
    "primary_state",
]

#: The key of ``app.extensions`` under which the states live.
EXTENSION_KEY = "rpcenable"


@dataclass
class Models:
    """The models the components define on the state's ``db``."""

    #: The call log's rows (``flask_rpcenable.calllog.models``).
    IncomingCall: Any = None  # noqa: N815 (a class)
    OutgoingCall: Any = None  # noqa: N815
    #: The API user model (built in or ``RPCENABLE_USER_MODEL``).
    APIUser: Any = None  # noqa: N815
    #: Background job records.
    BackgroundJob: Any = None  # noqa: N815

    def defined(self) -> list[Any]:
        """The models that are set, in a fixed order."""
        candidates = (self.IncomingCall, self.OutgoingCall, self.APIUser, self.BackgroundJob)
        return [model for model in candidates if model is not None]


@dataclass
class RPCState:
    """The per-app state of one :class:`~flask_rpcenable.RPCEnable` object."""

    #: The object's registry of procedures (shared by all its apps).
    registry: Registry
    #: The core settings, read once at ``init_app``.
    settings: Settings
    dispatcher: Dispatcher
    #: The database of the call log, API users and job records.
    db: SQLAlchemy
    #: The replay cache (given, or built from ``RPCENABLE_CACHE_*``).
    cache: Cache | None
    blueprint_name: str
    #: Whether this object owns the app's shared parts (admin, CLI, jobs).
    primary: bool
    #: Whether ``db`` is the extension's own embedded database, whose tables
    #: it creates itself.
    embedded: bool = False
    models: Models = field(default_factory=Models)
    #: The call-log writer (``flask_rpcenable.calllog``).
    calllog: CallLogger | None = None
    #: Background jobs (``flask_rpcenable.background``), on the primary state.
    background: Background | None = None
    #: The admin (``flask_rpcenable.admin``), on the primary state when enabled.
    admin: AdminState | None = None


def app_states(app: Flask) -> list[RPCState]:
    """The states of every RPCEnable object set up on ``app``, in setup order."""
    return list(app.extensions.get(EXTENSION_KEY, {}).values())


def primary_state(app: Flask) -> RPCState | None:
    """The state of the first RPCEnable object set up on ``app``, or ``None``."""
    return next((state for state in app_states(app) if state.primary), None)


#: Serialises the hooks' work and their removal (two threads may finish at once).
_hooks_lock = threading.Lock()


def before_request_until_done(app: Flask, work: Callable[[], bool]) -> None:
    """Run ``work`` before each request until it returns true, then never again.

    For setup work that must wait for a request (the app is complete by
    then: no extension can be set up after the first request) without
    leaving an app-wide hook that every later request pays for. Once done,
    the hook takes itself out of ``app.before_request_funcs``; it puts a new
    list in place instead of changing the one Flask may be looping over.
    """

    done = False

    def hook() -> None:
        nonlocal done
        if done:  # another thread finished it while this request was starting
            return
        with _hooks_lock:
            if done or not work():
                return
            done = True
            funcs = app.before_request_funcs.get(None)
            if funcs is not None and hook in funcs:
                app.before_request_funcs[None] = [f for f in funcs if f is not hook]

    app.before_request(hook)
