"""Fixtures of the client tests."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from client_helpers import make_remote
from flask import Flask


@pytest.fixture
def remote(make_app: Callable[..., Flask], serve: Any) -> Any:
    """A served app with a few methods and API user ``alice``, logging outgoing calls:
    ``remote.app``, ``.rpc``, ``.key`` and ``.url``."""
    app, rpc, key = make_remote(make_app, RPCENABLE_LOG_OUTGOING=True)
    server = serve(app)
    return SimpleNamespace(app=app, rpc=rpc, key=key, url=server.url + "/rpc/")
