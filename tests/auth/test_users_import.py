"""Moving users from django-rpcenable: keep their existing keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from auth_helpers import fault_of, make_env, v1


def test_create_with_key_from_stdin(tmp_path: Path, serve: Callable[..., Any]) -> None:
    env = make_env(tmp_path, serve=serve)
    old_key = "django-era-secret-0123456789"
    result = env.app.test_cli_runner().invoke(
        args=["rpc", "users", "create", "--key-from-stdin", "legacy"], input=old_key + "\n"
    )
    assert result.exit_code == 0, result.output
    assert old_key not in result.output
    proxy = env.proxy()
    assert proxy.auth_echo(*v1("legacy", old_key)) == "User legacy says: "
    assert fault_of(lambda: proxy.auth_echo(*v1("legacy", old_key + "x"))).faultCode == 406


def test_imported_key_too_short_is_refused(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    result = env.app.test_cli_runner().invoke(
        args=["rpc", "users", "create", "--key-from-stdin", "legacy"], input="short\n"
    )
    assert result.exit_code != 0
    assert "at least 16 characters" in result.output
