"""The ``rpcenable`` console script: the installed script (and ``python -m
flask_rpcenable.client.console``) run as subprocesses, with no Flask app, against a
real server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from client_helpers import free_port

from flask_rpcenable.client import cli as client_cli
from flask_rpcenable.client import console

SCRIPT = Path(sys.executable).with_name("rpcenable")




def run(*args: str, env: dict[str, str] | None = None, module: bool = False,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed script (or the module) with a clean environment: no
    Flask app to find, no API key unless given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "RPCENABLE_"))}
    clean.update(env or {})
    command = [sys.executable, "-m", "flask_rpcenable.client.console"] if module else [str(SCRIPT)]
    return subprocess.run(
        [*command, *args], env=clean, cwd=cwd, capture_output=True, text=True, timeout=120,
        check=False,
    )


def test_script_is_installed_as_an_entry_point() -> None:
    (entry,) = metadata.entry_points(group="console_scripts", name="rpcenable")
    assert entry.value == "flask_rpcenable.client.console:main"
    assert SCRIPT.exists(), f"{SCRIPT} is missing: pip install -e . installs it"


def test_call_without_an_app(remote: Any, tmp_path: Path) -> None:
    result = run("call", remote.url, "math.add", "2", "40", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == 42
    result = run("call", remote.url, "types", module=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"when": "2024-01-02T03:04:05", "data": "AP8="}
    result = run("call", "--strings", remote.url, "echo", "42", "--", cwd=tmp_path)
    assert json.loads(result.stdout) == "Server says: 42"


def test_exit_status(remote: Any) -> None:
    result = run("call", remote.url, "no.such.method")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("Fault -32601: ")
    result = run("call", "--timeout", "5", f"http://127.0.0.1:{free_port()}/rpc/", "echo")
    assert result.returncode == 3 and result.stderr.startswith("Error: ConnectError: ")
    result = run("call", remote.url, "auth_echo", "--user", "alice")
    assert result.returncode == 2 and "RPCENABLE_CALL_API_KEY" in result.stderr


@pytest.mark.parametrize("scheme", ["v1", "v2"])
def test_authenticated_call(remote: Any, scheme: str) -> None:
    result = run("call", remote.url, "auth_echo", "hi", "--user", "alice", "--scheme", scheme,
                 env={"RPCENABLE_CALL_API_KEY": remote.key})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "User alice says: hi"
    assert remote.key not in result.stdout + result.stderr


def test_options_are_those_of_flask_rpc_call() -> None:
    def shape(command: Any) -> list[tuple[Any, ...]]:
        return [(p.name, tuple(p.opts), p.default, p.nargs) for p in command.params]

    assert shape(console.main.commands["call"]) == shape(client_cli.call_command)
    names = [p.name for p in console.main.commands["call"].params]
    assert names == ["url", "method", "args", "user", "key_env", "scheme", "timeout",
                     "cafile", "insecure", "strings", "use_json"]
