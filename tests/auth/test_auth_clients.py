"""Other clients against the server: the JavaScript example of docs/auth.rst
(run with Node) and flask-rpcenable's own XMLRPCPoint, both schemes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from auth_helpers import AuthEnv, make_env

DOC = Path(__file__).resolve().parents[2] / "docs" / "auth.rst"


@pytest.fixture
def env(tmp_path: Path, serve: Callable[..., Any]) -> AuthEnv:
    environment = make_env(tmp_path, serve=serve)
    environment.add_user("zoë")
    return environment


def javascript_example() -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"\.\. code-block:: javascript\n\n((?:   .*\n|\n)+)", text)
    assert match, "no JavaScript example in docs/auth.rst"
    return "\n".join(line[3:] for line in match.group(1).splitlines())


def test_documented_node_client(env: AuthEnv, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = tmp_path / "client.mjs"
    script.write_text(javascript_example(), encoding="utf-8")
    result = subprocess.run(
        [node, str(script)],
        env={**os.environ, "RPC_URL": env.url + "/rpc/", "RPC_USERNAME": "zoë",
             "RPC_API_KEY": env.keys["zoë"]},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "User zoë says: Hi from v1" in result.stdout
    assert "User zoë says: Hi from v2" in result.stdout
    assert "faultCode" not in result.stdout
    assert env.calls == [("zoë", "Hi from v1"), ("zoë", "Hi from v2")]


@pytest.mark.parametrize("scheme", ["v1", "v2"])
def test_xmlrpcpoint_client(env: AuthEnv, scheme: str) -> None:
    from flask_rpcenable.client.point import XMLRPCPoint

    point = XMLRPCPoint(env.url + "/rpc/", auth=("zoë", env.keys["zoë"]), auth_scheme=scheme)
    try:
        assert point.auth_echo("hello") == "User zoë says: hello"
        assert point.auth_echo("again") == "User zoë says: again"
    finally:
        close = getattr(point, "close", None)
        if close is not None:
            close()
