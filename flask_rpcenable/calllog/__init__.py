"""The call log: a row for every incoming and outgoing call, in the app's database.

- ``models``: the ``IncomingCall`` and ``OutgoingCall`` models;
- ``recorder``: the settings, the writer (a dispatcher recorder) and
  :func:`~.recorder.record_outgoing` for the client;
- ``cli``: ``flask rpc prune-logs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

from ..cli import rpc_cli
from ..settings import set_defaults
from .cli import prune_logs_command
from .models import define_log_models
from .recorder import DEFAULTS, CallLogger, LogConfig

if TYPE_CHECKING:
    from ..state import RPCState

__all__ = ["init_app"]


def init_app(app: Flask, state: RPCState) -> None:
    """Set the logging defaults, define the models and add the recorder."""
    set_defaults(app, DEFAULTS)
    config = LogConfig.from_app(app)
    models = define_log_models(state.db)
    state.models.IncomingCall = models.IncomingCall
    state.models.OutgoingCall = models.OutgoingCall
    state.calllog = CallLogger(state, config, models)
    if config.log_incoming:
        state.dispatcher.recorders.append(state.calllog.record_incoming)
        app.teardown_request(state.calllog.flush_on_teardown)
    if state.primary:
        rpc_cli.add_command(prune_logs_command)
