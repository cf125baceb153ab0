"""The ``flask rpc`` command group.

Components add their commands to :data:`rpc_cli` (``flask rpc init-db``,
``flask rpc users ...``, ``flask rpc worker``, ``flask rpc call ...``).
"""

from __future__ import annotations

from flask.cli import AppGroup

rpc_cli = AppGroup("rpc", help="flask-rpcenable: RPC logs, API users, workers and calls.")
