"""The example app: started with ``flask --app example.app run`` in a subprocess."""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


example_env: dict = {}


@pytest.fixture
def request_cleanup():
    """Proxies to close after the test (their keep-alive sockets)."""
    proxies: list = []
    yield proxies
    for proxy in proxies:
        proxy("close")()


@pytest.fixture(scope="module")
def example_url(tmp_path_factory):
    instance = tmp_path_factory.mktemp("example-instance")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "RPCENABLE_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(RPCENABLE_ADMIN_USERNAME="admin", RPCENABLE_ADMIN_PASSWORD="change-me")
    app_spec = f"example.app:create_app(instance_path={str(instance)!r})"
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", app_spec, "run", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/rpc/"
    example_env.update(env=env, app_spec=app_spec)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                pytest.fail(f"the example exited with {process.returncode}:\n{output}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the example did not start within 30 s")
                time.sleep(0.1)
        yield url, instance
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def test_list_methods(example_url):
    url, _ = example_url
    with xmlrpc.client.ServerProxy(url) as server:
        assert server.system.listMethods() == [
            "auth_echo",
            "divide",
            "echo",
            "people.describe",
            "relay.echo",
            "reports.start",
            "system.listMethods",
            "system.methodHelp",
            "system.methodSignature",
            "system.multicall",
        ]


def test_methods(example_url):
    url, instance = example_url
    with xmlrpc.client.ServerProxy(url, use_builtin_types=True) as server:
        assert server.echo("Hi!") == "Server says: Hi!"
        assert server.people.describe(
            {"name": "Ada", "born": datetime.datetime(1815, 12, 10)}
        ) == {"name": "Ada", "greeting": "Hello, Ada!", "born_weekday": "Sunday"}
        assert server.divide(1, 4) == 0.25
        with pytest.raises(xmlrpc.client.Fault) as excinfo:
            server.divide(1, 0)
        assert excinfo.value.faultCode == 1
        assert server.system.methodSignature("divide") == [["double", "double", "double"]]
    with xmlrpc.client.ServerProxy(url + "v2/") as v2:
        assert v2.math.add(2, 3) == 5
        assert v2.system.listMethods()[0] == "math.add"
    # the embedded database is in the instance folder
    assert (instance / "rpcenable.sqlite").exists()


def test_admin_credentials_come_from_the_environment(monkeypatch, tmp_path):
    from example.app import create_app

    monkeypatch.setenv("RPCENABLE_ADMIN_USERNAME", "alice")
    monkeypatch.setenv("RPCENABLE_ADMIN_PASSWORD", "correct horse")
    monkeypatch.setenv("FLASK_RPCENABLE_MAX_DEPTH", "7")
    app = create_app(instance_path=str(tmp_path))
    assert app.config["RPCENABLE_ADMIN_USERNAME"] == "alice"
    assert app.config["RPCENABLE_ADMIN_PASSWORD"] == "correct horse"
    assert app.config["RPCENABLE_LOG_INCOMING"] is True
    assert app.config["RPCENABLE_MAX_DEPTH"] == 7
    assert app.config["SECRET_KEY"]


def test_secret_survives_a_restart_so_api_keys_keep_working(monkeypatch, tmp_path):
    from example.app import create_app
    from flask_rpcenable.auth.users import create_api_user, decrypt_api_key

    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    first = create_app(instance_path=str(tmp_path))
    with first.app_context():
        db = next(iter(first.extensions["rpcenable"].values())).db
        model = next(iter(first.extensions["rpcenable"].values())).models.APIUser
        user, key = create_api_user(db, model, "alice")
        token = user.api_key_encrypted
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    again = create_app(instance_path=str(tmp_path))
    assert again.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    with again.app_context():
        assert decrypt_api_key(token) == key


def _flask_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", example_env["app_spec"], *args],
        cwd=ROOT, env=example_env["env"], capture_output=True, text=True, timeout=60,
        check=False,
    )


def test_every_part_as_the_readme_shows(example_url, request_cleanup):
    """README's tour: an API user from the CLI, an authenticated call, a job,
    an outgoing call, and the admin pages that show them."""
    import base64
    import re
    import urllib.request

    from flask_rpcenable import XMLRPCPoint

    url, _ = example_url
    created = _flask_cli("rpc", "users", "create", "alice")
    assert created.returncode == 0, created.stderr
    api_key = re.search(r"shown only this once\): (\S+)", created.stdout).group(1)
    with XMLRPCPoint(url, auth=("alice", api_key), log=False) as alice:
        assert alice.auth_echo("Hi!") == "User alice says: Hi!"
    server = xmlrpc.client.ServerProxy(url)
    request_cleanup.append(server)
    with pytest.raises(xmlrpc.client.Fault) as refused:
        server.auth_echo("Hi!")
    assert refused.value.faultCode == 401
    job_id = server.reports.start("weekly", 0.1)
    assert re.fullmatch(r"[0-9a-f]{32}", job_id)
    assert server.relay.echo("Hi!") == "Relayed: Server says: Hi!"

    admin = url.replace("/rpc/", "/admin/")
    token = base64.b64encode(b"admin:change-me").decode()

    def page(path: str) -> str:
        request = urllib.request.Request(admin + path, headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.read().decode()

    deadline = time.monotonic() + 10
    while "succeeded" not in (jobs := page("background-jobs/")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "write_report" in jobs and "succeeded" in jobs
    assert "alice" in page("api-users/")
    assert "relay.echo" in page("incoming-calls/") and "auth_echo" in page("incoming-calls/")
    assert "echo" in page("outgoing-calls/")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(admin, timeout=10)  # noqa: S310
    denied.value.close()
    assert denied.value.code == 401
