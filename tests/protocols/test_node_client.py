"""A JSON-RPC client from another ecosystem, over real HTTP: jayson (npm),
run by Node.js. ``.ci/run`` installs it (``npm ci`` in tests/protocols/node);
the test skips only where Node.js itself is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from jsonrpc_helpers import spec_app

NODE_DIR = Path(__file__).parent / "node"


def test_jayson_client(make_app: Callable[..., Flask], serve: Callable[..., Any]) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    assert (NODE_DIR / "node_modules" / "jayson").is_dir(), (
        "run 'npm ci' in tests/protocols/node (.ci/run does)"
    )
    app, _ = spec_app(make_app)
    url = serve(app).url + "/rpc/"
    done = subprocess.run(
        [node, str(NODE_DIR / "client.js"), url],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["positional"]["result"] == 19
    assert out["named"]["result"] == 19
    assert out["missing"]["error"] == {"code": -32601, "message": "Method not found"}
    assert out["notification"] is None
    assert app.extensions["test_notes"] == [("update", (1, 2, 3))]
    assert [s["result"] for s in out["batch"]["successes"]] == [7, ["hello", 5]]
    assert [e["error"]["code"] for e in out["batch"]["errors"]] == [-32601]
    assert out["discover"]["result"]["openrpc"].startswith("1.")
