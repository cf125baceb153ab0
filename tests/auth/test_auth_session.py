"""Authentication leaves the app's ``db.session`` alone.

Stamping ``last_login`` used to commit ``db.session``, and with it whatever
an earlier sub-call of the same multicall had flushed but not committed.
"""

from __future__ import annotations

import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from auth_helpers import make_env, v1
from flask_sqlalchemy import SQLAlchemy

from flask_rpcenable import RPCEnable


def test_last_login_does_not_commit_the_apps_pending_work(tmp_path: Path, serve: Any) -> None:
    notes = sa.Table("test_note", sa.MetaData(), sa.Column("text", sa.String(50)))

    def setup(rpc: RPCEnable, db: SQLAlchemy) -> None:
        @rpc.register
        def write_uncommitted(text: str) -> bool:
            db.session.execute(notes.insert().values(text=text))
            db.session.flush()
            return True

    env = make_env(tmp_path, serve=serve, setup=setup)
    with env.app.app_context():
        notes.create(env.db.engine)
    key = env.add_user("alice")
    proxy = xmlrpc.client.ServerProxy(env.url + "/rpc/")
    multi = xmlrpc.client.MultiCall(proxy)
    multi.write_uncommitted("never committed")
    multi.auth_echo(*v1("alice", key), "hi")
    assert list(multi()) == [True, "User alice says: hi"]
    with env.app.app_context(), env.db.engine.connect() as conn:
        assert conn.execute(sa.select(notes.c.text)).all() == []
    # On SQLite the stamp waits for the response to close (the app's session
    # held the write lock): wait for it.
    deadline = time.monotonic() + 30
    while env.user("alice").last_login is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert env.user("alice").last_login is not None
