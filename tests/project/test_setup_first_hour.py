"""A new user's first hour: settings that mean what they say, tables, the
secret key, and warnings only where they matter (issue 9, items 1-5)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from live import build_app

from flask_rpcenable import RPCEnable, generate_auth_args
from flask_rpcenable.errors import SYSTEM_ERROR

ROOT = Path(__file__).resolve().parents[2]

BOOLEAN_SETTINGS = [
    "RPCENABLE_LOG_INCOMING",
    "RPCENABLE_LOG_OUTGOING",
    "RPCENABLE_ALLOW_NONE",
    "RPCENABLE_BROWSABLE",
    "RPCENABLE_ADMIN_ENABLED",
    "RPCENABLE_BACKGROUND_RECORDS",
]


def call(app: Flask, method: str, *params: Any, path: str = "/rpc/") -> Any:
    """POST one XML-RPC call through the test client; the decoded result or the Fault."""
    response = app.test_client().post(
        path, data=xmlrpc.client.dumps(params, method), content_type="text/xml"
    )
    assert response.status_code == 200, response.data
    try:
        return xmlrpc.client.loads(response.data)[0][0]
    except xmlrpc.client.Fault as fault:
        return fault


def echo_app(tmp_path: Path, **config: Any) -> Flask:
    rpc = RPCEnable()

    @rpc.register
    def echo(var: Any = None) -> Any:
        return var

    app = build_app(tmp_path, **config)
    rpc.init_app(app)
    return app


# -- 1. README's test command builds a fresh virtual environment -----------------


def test_ci_runs_readme_test_command_in_a_fresh_venv() -> None:
    readme = (ROOT / "README.rst").read_text()
    blocks = re.findall(r"\.\. code-block:: sh\n\n((?:    .+\n)+)", readme)
    commands = [textwrap.dedent(block).strip() for block in blocks]
    test_commands = [c for c in commands if "pytest" in c]
    assert len(test_commands) == 1, commands
    command = test_commands[0]
    assert command.startswith("python3 -m venv --clear .venv")
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines()


def test_cli_reads_no_deprecated_click_api() -> None:
    """Click 8.5 deprecates get_text_stream; filterwarnings=error turns it into a failure."""
    package = ROOT / "flask_rpcenable"
    offenders = [
        str(path.relative_to(ROOT))
        for path in package.rglob("*.py")
        if re.search(r"click\.get_(text|binary)_stream", path.read_text())
    ]
    assert offenders == []


# -- 2. Boolean settings ---------------------------------------------------------


@pytest.mark.parametrize("key", BOOLEAN_SETTINGS)
@pytest.mark.parametrize("word", ["false", "False", "NO", "off", "0", 0, False])
def test_boolean_setting_false_words(tmp_path: Path, key: str, word: Any) -> None:
    from flask_rpcenable.settings import bool_setting

    assert bool_setting(key, word) is False
    app = echo_app(tmp_path, **{key: word})
    assert app is not None


@pytest.mark.parametrize("word", ["true", "TRUE", "Yes", "on", "1", 1, True])
def test_boolean_setting_true_words(word: Any) -> None:
    from flask_rpcenable.settings import bool_setting

    assert bool_setting("RPCENABLE_LOG_INCOMING", word) is True


@pytest.mark.parametrize("key", BOOLEAN_SETTINGS)
@pytest.mark.parametrize("word", ["maybe", "", 2, "ja", None])
def test_boolean_setting_other_values_refused(tmp_path: Path, key: str, word: Any) -> None:
    with pytest.raises(RuntimeError, match=key):
        echo_app(tmp_path, **{key: word})


def test_allow_none_false_string_is_off(tmp_path: Path) -> None:
    app = echo_app(tmp_path, RPCENABLE_ALLOW_NONE="False")
    fault = call(app, "echo")
    assert isinstance(fault, xmlrpc.client.Fault)
    assert b"<nil/>" not in app.test_client().post(
        "/rpc/", data=xmlrpc.client.dumps((), "echo"), content_type="text/xml"
    ).data


def test_browsable_no_hides_page(tmp_path: Path) -> None:
    on = echo_app(tmp_path / "on")
    off = echo_app(tmp_path / "off", RPCENABLE_BROWSABLE="no")
    assert on.test_client().get("/rpc/").status_code == 200
    assert off.test_client().get("/rpc/").status_code == 405


def test_log_incoming_false_string_does_not_log(tmp_path: Path) -> None:
    app = echo_app(tmp_path, RPCENABLE_LOG_INCOMING="false")
    assert call(app, "echo", "x") == "x"
    state = next(iter(app.extensions["rpcenable"].values()))
    with app.app_context():
        assert state.db.session.query(state.models.IncomingCall).count() == 0


def test_prefixed_env_false_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_RPCENABLE_ALLOW_NONE", "False")
    monkeypatch.setenv("FLASK_RPCENABLE_LOG_INCOMING", "true")
    rpc = RPCEnable()

    @rpc.register
    def nothing() -> None:
        return None

    app = build_app(tmp_path)
    app.config.from_prefixed_env()
    assert app.config["RPCENABLE_ALLOW_NONE"] == "False"  # a string, as Flask leaves it
    rpc.init_app(app)
    assert rpc.state(app).settings.allow_none is False
    assert isinstance(call(app, "nothing"), xmlrpc.client.Fault)
    with app.app_context():
        state = rpc.state(app)
        assert state.db.session.query(state.models.IncomingCall).count() == 1


def test_misspelled_setting_warns_once_with_nearest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    echo_app(tmp_path, RPCENABLE_LOG_INCOMMING=True, RPCENABLE_CACHE_REDIS_URL="redis://x")
    warned = [r.getMessage() for r in caplog.records if "not a setting" in r.getMessage()]
    assert len(warned) == 1, warned
    assert "RPCENABLE_LOG_INCOMMING" in warned[0]
    assert "did you mean RPCENABLE_LOG_INCOMING?" in warned[0]


def test_known_settings_do_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    echo_app(
        tmp_path,
        RPCENABLE_LOG_INCOMING=True,
        RPCENABLE_SECRET_KEY="s" * 32,
        RPCENABLE_SECRET_KEY_FALLBACKS=[],
        RPCENABLE_ADMINS=["ops@example.org"],
    )
    assert "not a setting" not in caplog.text


# -- 3. Tables ---------------------------------------------------------------------


def test_embedded_database_creates_its_tables(tmp_path: Path) -> None:
    rpc = RPCEnable()

    @rpc.register
    def echo(var: str = "") -> str:
        return var

    app = Flask("fresh", instance_path=str(tmp_path / "instance"))
    app.config.update(RPCENABLE_LOG_INCOMING=True)
    rpc.init_app(app)
    assert call(app, "echo", "hi") == "hi"
    state = rpc.state(app)
    with app.app_context():
        rows = state.db.session.query(state.models.IncomingCall).all()
        assert [row.method for row in rows] == ["echo"]


def _own_db_app(tmp_path: Path, **config: Any) -> tuple[Flask, RPCEnable]:
    rpc = RPCEnable()

    @rpc.register
    def echo(var: str = "") -> str:
        return var

    app = build_app(tmp_path, RPCENABLE_LOG_INCOMING=True, **config)
    db = SQLAlchemy()
    db.init_app(app)
    rpc.init_app(app, db=db)
    return app, rpc


def test_missing_tables_on_app_database_warn_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    app, _ = _own_db_app(tmp_path)
    for _ in range(3):
        assert call(app, "echo", "x") == "x"
    messages = [r for r in caplog.records if r.levelno >= logging.WARNING]
    missing = [r for r in messages if "does not exist" in r.getMessage()]
    assert len(missing) == 1, [r.getMessage() for r in messages]
    assert "flask rpc init-db" in missing[0].getMessage()
    assert "rpcenable_incoming_call" in missing[0].getMessage()
    assert not any(r.exc_info for r in messages)


def test_missing_job_table_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from flask_rpcenable import postpone

    caplog.set_level(logging.WARNING)
    app, _ = _own_db_app(tmp_path, RPCENABLE_BACKGROUND="sync")

    done: list[int] = []

    @postpone
    def job(n: int) -> None:
        done.append(n)

    with app.app_context():
        for n in range(3):
            job(n)
    assert done == [0, 1, 2]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "rpcenable_background_job" in warnings[0] and "flask rpc init-db" in warnings[0]


# -- 4. Secret key -----------------------------------------------------------------


def _auth_app(tmp_path: Path, **config: Any) -> tuple[Flask, RPCEnable]:
    rpc = RPCEnable()

    @rpc.register
    @rpc.auth
    def whoami(user: Any) -> str:
        return user.username

    app = Flask("nosecret", instance_path=str(tmp_path / "instance"))
    app.config.update(config)
    rpc.init_app(app)
    return app, rpc


def test_no_secret_is_said_once_at_init(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    _auth_app(tmp_path)
    said = [r for r in caplog.records if "SECRET_KEY" in r.getMessage()]
    assert len(said) == 1
    assert not said[0].exc_info


def test_no_secret_not_said_without_auth_methods(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    rpc = RPCEnable()
    rpc.register(lambda: 1, name="one")
    rpc.init_app(Flask("plain", instance_path=str(tmp_path / "instance")))
    assert "SECRET_KEY" not in caplog.text


def test_no_secret_call_is_a_system_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = _auth_app(tmp_path)
    caplog.set_level(logging.ERROR)
    fault = call(app, "whoami", *generate_auth_args("alice", "k" * 32))
    assert isinstance(fault, xmlrpc.client.Fault)
    assert fault.faultCode == SYSTEM_ERROR
    assert "Traceback" not in caplog.text
    assert any("no secret is set" in r.getMessage() for r in caplog.records)


def test_cli_without_secret_prints_one_line(tmp_path: Path) -> None:
    app, _ = _auth_app(tmp_path)
    result = app.test_cli_runner().invoke(args=["rpc", "users", "create", "alice"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and "SECRET_KEY" in lines[0]


# -- 5. Warnings only where they matter ------------------------------------------------

_FLASK_APP = """
from flask import Flask
from flask_rpcenable import RPCEnable

rpc = RPCEnable()
other = RPCEnable(name="other", url_prefix="/other")

@rpc.register
def echo(var: str = "") -> str:
    return var
{auth}
app = Flask(__name__, instance_path={instance!r})
app.config["SECRET_KEY"] = "x" * 32
rpc.init_app(app)
other.init_app(app)
"""

_AUTH = """
@rpc.register
@rpc.auth
def whoami(user) -> str:
    return user.username
"""


def _flask(tmp_path: Path, *args: str, auth: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "noisy.py").write_text(
        _FLASK_APP.format(auth=_AUTH if auth else "", instance=str(tmp_path / "instance"))
    )
    env = {**os.environ, "FLASK_APP": "noisy"}
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.parametrize("auth", [False, True])
def test_flask_commands_are_quiet(tmp_path: Path, auth: bool) -> None:
    for args in (["--help"], ["rpc", "--help"], ["routes"]):
        result = _flask(tmp_path, *args, auth=auth)
        assert result.returncode == 0, result.stderr
        assert "replay cache" not in result.stderr
        assert "WARNING" not in result.stderr


def _served_app(tmp_path: Path, *, auth: bool) -> Flask:
    rpc = RPCEnable()
    rpc.register(lambda: 1, name="one")
    if auth:
        rpc.register(rpc.auth(lambda user: user.username), name="whoami")
    app = build_app(tmp_path, TESTING=False)
    rpc.init_app(app)
    return app


@pytest.mark.parametrize("auth", [False, True])
def test_replay_warning_on_first_request_only_with_auth(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, auth: bool,
    serve: Callable[..., Any],
) -> None:
    caplog.set_level(logging.WARNING)
    app = _served_app(tmp_path, auth=auth)
    assert "replay cache" not in caplog.text
    url = serve(app).url + "/rpc/"
    for _ in range(3):
        assert xmlrpc.client.ServerProxy(url).one() == 1
    warned = [r for r in caplog.records if "replay cache" in r.getMessage()]
    assert len(warned) == (1 if auth else 0)
