"""What the extension leaves on every request: no app-wide hook after the first, a cheap
teardown for the embedded database, and a log table with only the indexes it needs."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from flask_rpcenable import RPCEnable

CALL = (
    b"<?xml version='1.0'?><methodCall><methodName>echo</methodName><params>"
    b"<param><value><string>hi</string></value></param></params></methodCall>"
)


def make_app(tmp_path: Path, **config: object) -> tuple[Flask, RPCEnable]:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="test", **config)
    rpc = RPCEnable()

    @rpc.register
    def echo(value: str) -> str:
        return value

    @app.get("/other")
    def other() -> str:
        return "other"

    rpc.init_app(app)
    return app, rpc


def call(app: Flask) -> None:
    response = app.test_client().post("/rpc/", data=CALL, content_type="text/xml")
    assert response.status_code == 200 and b"hi" in response.data


def test_no_app_wide_before_request_hook_after_the_first_rpc_request(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    assert app.before_request_funcs.get(None)  # the first-request work is pending
    app.test_client().get("/other")
    # The replay-cache check waits for a request to the endpoint itself.
    assert len(app.before_request_funcs[None]) == 1
    call(app)
    assert not app.before_request_funcs.get(None)
    call(app)  # and later calls work without them


def test_csrf_protect_set_up_after_us_still_spares_the_endpoint(tmp_path: Path) -> None:
    from flask_wtf import CSRFProtect

    app, _ = make_app(tmp_path)
    CSRFProtect(app)
    call(app)
    call(app)
    assert app.test_client().post("/other").status_code in (400, 405)


def test_csrf_protect_set_up_before_us_spares_the_endpoint_at_once(tmp_path: Path) -> None:
    from flask_wtf import CSRFProtect

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="test")
    CSRFProtect(app)
    rpc = RPCEnable()

    @rpc.register
    def echo(value: str) -> str:
        return value

    rpc.init_app(app)
    exempt = app.extensions["csrf"]._exempt_blueprints
    assert "rpcenable" in {getattr(b, "name", b) for b in exempt}
    call(app)


def test_replay_cache_warning_still_given_once(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="test")
    rpc = RPCEnable()

    @rpc.register
    @rpc.auth
    def secret(user: object) -> str:
        return "x"

    @rpc.register
    def echo(value: str) -> str:
        return value

    rpc.init_app(app)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    app.logger.addHandler(handler)
    try:
        call(app)
        call(app)
    finally:
        app.logger.removeHandler(handler)
    warnings = [r for r in records if "flask-rpcenable" in r.getMessage()]
    assert len(warnings) == 1
    assert not app.before_request_funcs.get(None)


def test_embedded_database_teardown_is_ours_and_still_removes_a_session(
    tmp_path: Path,
) -> None:
    app, rpc = make_app(tmp_path)
    db = rpc.state(app).db
    (teardown,) = app.teardown_appcontext_funcs
    assert getattr(teardown, "__self__", None) is not db  # not Flask-SQLAlchemy's own
    opened = []

    @app.get("/uses-db")
    def uses_db() -> str:
        db.session.execute(sa.text("SELECT 1"))
        opened.append(db.session())
        assert db.session.registry.has() and opened[0].in_transaction()
        return "ok"

    call(app)
    with app.app_context():
        assert not db.session.registry.has()  # an RPC call leaves no session behind
    assert app.test_client().get("/uses-db").data == b"ok"
    assert not opened[0].in_transaction()  # closed at the end of the request


def test_new_log_table_has_only_the_indexes_it_needs(tmp_path: Path) -> None:
    app, rpc = make_app(tmp_path, RPCENABLE_LOG_INCOMING=True)
    call(app)
    with app.app_context():
        engine = rpc.state(app).db.engine
        indexes = sa.inspect(engine).get_indexes("rpcenable_incoming_call")
    columns = sorted(tuple(index["column_names"]) for index in indexes)
    assert columns == [("created_at",), ("method", "created_at")]
