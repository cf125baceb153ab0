"""The admin reads its settings once, at ``init_app``: later changes to
``app.config`` change nothing, and a wrong setting fails at ``init_app``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, request
from live import basic_auth
from log_app import LogApp

from flask_rpcenable import RPCEnable
from flask_rpcenable.admin import AdminSettings, admin_settings

MakeLogApp = Callable[..., LogApp]
CREDENTIALS = {"RPCENABLE_ADMIN_USERNAME": "admin", "RPCENABLE_ADMIN_PASSWORD": "first pw"}


basic = basic_auth


FIRST = basic("admin", "first pw")
hook_calls: list[str] = []


def staff_hook() -> bool:
    hook_calls.append(request.path)
    return request.headers.get("X-Staff") == "yes"


def test_credentials_are_read_once(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, **CREDENTIALS)
    client = log.app.test_client()
    assert client.get("/admin/", headers=FIRST).status_code == 200
    log.app.config.update(
        RPCENABLE_ADMIN_USERNAME="mallory",
        RPCENABLE_ADMIN_PASSWORD="second pw",
        RPCENABLE_ADMIN_ACCESS=lambda: True,
    )
    # the credentials and (no) hook of init_app still decide
    assert client.get("/admin/", headers=FIRST).status_code == 200
    assert client.get("/admin/incoming-calls/", headers=FIRST).status_code == 200
    assert client.get("/admin/", headers=basic("mallory", "second pw")).status_code == 401
    assert client.get("/admin/").status_code == 401
    log.app.config.update(RPCENABLE_ADMIN_USERNAME=None, RPCENABLE_ADMIN_PASSWORD=None)
    assert client.get("/admin/", headers=FIRST).status_code == 200


def test_unconfigured_admin_stays_closed(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None)
    client = log.app.test_client()
    assert client.get("/admin/").status_code == 403
    log.app.config.update(RPCENABLE_ADMIN_ACCESS=lambda: True, **CREDENTIALS)
    assert client.get("/admin/").status_code == 403
    assert client.get("/admin/", headers=FIRST).status_code == 403


def test_access_hook_is_imported_once(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, RPCENABLE_ADMIN_ACCESS="test_admin_settings_once.staff_hook")
    settings = admin_settings(log.app)
    assert isinstance(settings, AdminSettings) and settings.access is staff_hook
    log.app.config["RPCENABLE_ADMIN_ACCESS"] = "no_such_module_anywhere.hook"
    client = log.app.test_client()
    hook_calls.clear()
    assert client.get("/admin/", headers={"X-Staff": "yes"}).status_code == 200
    assert client.get("/admin/").status_code == 403
    # the hook of init_app ran (once per view Flask-Admin checks for its menu)
    assert hook_calls and set(hook_calls) == {"/admin/"}


def test_dashboard_settings_are_read_once(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, RPCENABLE_ADMIN_STATS_SAMPLE=2, **CREDENTIALS)
    for n in range(3):
        assert log.call("echo", str(n)) == f"Server says: {n}"
    log.app.config.update(RPCENABLE_ADMIN_STATS_SAMPLE=0, RPCENABLE_LOG_INCOMING=False)
    page = log.app.test_client().get("/admin/", headers=FIRST).get_data(as_text=True)
    assert "Percentiles over the newest 2 calls" in page
    assert "are not being logged" not in page


def test_logging_off_banner_is_read_once(make_log_app: MakeLogApp) -> None:
    log = make_log_app(None, RPCENABLE_LOG_INCOMING=False, **CREDENTIALS)
    log.app.config["RPCENABLE_LOG_INCOMING"] = True
    page = log.app.test_client().get("/admin/", headers=FIRST).get_data(as_text=True)
    assert "are not being logged" in page


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"RPCENABLE_ADMIN_ACCESS": "no_such_module_anywhere.hook"},
         "RPCENABLE_ADMIN_ACCESS: cannot import 'no_such_module_anywhere.hook'"),
        ({"RPCENABLE_ADMIN_ACCESS": "test_admin_settings_once.no_such_hook"},
         "RPCENABLE_ADMIN_ACCESS: cannot import 'test_admin_settings_once.no_such_hook'"),
        ({"RPCENABLE_ADMIN_ACCESS": "test_admin_settings_once.CREDENTIALS"},
         "RPCENABLE_ADMIN_ACCESS must be a callable or its import path"),
        ({"RPCENABLE_ADMIN_ACCESS": 42},
         "RPCENABLE_ADMIN_ACCESS must be a callable or its import path"),
        ({"RPCENABLE_ADMIN_USERNAME": "admin"},
         "RPCENABLE_ADMIN_USERNAME is set but RPCENABLE_ADMIN_PASSWORD is not"),
        ({"RPCENABLE_ADMIN_USERNAME": "admin", "RPCENABLE_ADMIN_PASSWORD": ""},
         "RPCENABLE_ADMIN_USERNAME is set but RPCENABLE_ADMIN_PASSWORD is not"),
        ({"RPCENABLE_ADMIN_USERNAME": "admin", "RPCENABLE_ADMIN_PASSWORD": b"pw"},
         "RPCENABLE_ADMIN_PASSWORD must be a string"),
        ({"RPCENABLE_ADMIN_STATS_SAMPLE": 0}, "RPCENABLE_ADMIN_STATS_SAMPLE"),
    ],
)
def test_bad_settings_fail_at_init_app(
    make_app: Callable[..., Flask], config: dict[str, Any], message: str
) -> None:
    app = make_app(**config)
    with pytest.raises(RuntimeError) as raised:
        RPCEnable().init_app(app)
    assert message in str(raised.value)


def test_bad_settings_are_ignored_with_the_admin_off(make_app: Callable[..., Flask]) -> None:
    app = make_app(RPCENABLE_ADMIN_ENABLED=False,
                   RPCENABLE_ADMIN_ACCESS="no_such_module_anywhere.hook")
    RPCEnable().init_app(app)
    with pytest.raises(RuntimeError, match="not set up"):
        admin_settings(app)
