"""The user lookup of an authenticated call (issue 13).

By default the user is read on every call, with SQL compiled once and run on
a raw connection of the library's own pool (an engine with listeners or SQL
echo gets SQLAlchemy's own execution, so that they see it); database errors
stay SQLAlchemy's and a dropped connection is invalidated. The method gets
an instance put into the request's ``db.session`` as a query would put a
loaded row: in the session, with no changes, its other columns and
relationships loading on first use.
"""

from __future__ import annotations

import datetime
import logging
import uuid
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from auth_helpers import AuthEnv, count_user_reads, fault_of, make_env, new_app, v1
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_rpcenable import RPCEnable
from flask_rpcenable.auth import lookup, prepared, signing
from flask_rpcenable.auth.users import BaseAPIUser, create_api_user, encrypt_api_key
from flask_rpcenable.bookkeeping import bookkeeping_engine
from flask_rpcenable.client.jsonrpc import JSONRPCPoint


@pytest.fixture
def raw_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The user names read from the database (the raw path)."""
    return count_user_reads(monkeypatch)


@pytest.fixture
def env(tmp_path: Path, serve: Callable[..., Any]) -> AuthEnv:
    environment = make_env(tmp_path, serve=serve)
    environment.add_user("alice")
    return environment


def _lookup(env: AuthEnv) -> lookup.UserLookup:
    return env.rpc.state(env.app).dispatcher.authenticator._lookup(env.model)


def test_the_user_is_read_on_every_call_by_default(env: AuthEnv, raw_reads: list[str]) -> None:
    assert [env.call_as() for _ in range(3)] == ["User alice says: x"] * 3
    assert raw_reads == ["alice"] * 3
    assert _lookup(env).cache is None
    # A wrong signature costs one read too (the second read is for remembered rows only).
    assert fault_of(lambda: env.call_as("alice", "not-alices-key-" * 3)).faultCode == 406
    assert raw_reads == ["alice"] * 4
    env.set_user("alice", active=False)
    assert fault_of(lambda: env.call_as()).faultCode == 406
    env.set_user("alice", active=True)
    new = "a-brand-new-key-0123456789abcdef"
    with env.app.app_context():
        env.set_user("alice", api_key_encrypted=encrypt_api_key(new, env.app))
    assert fault_of(lambda: env.call_as()).faultCode == 406
    assert env.call_as("alice", new) == "User alice says: x"


def test_sql_echo_sees_the_lookup(
    env: AuthEnv, raw_reads: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
        assert env.call_as() == "User alice says: x"
    assert any("api_key_encrypted" in r.getMessage() for r in caplog.records)
    assert raw_reads == []


def test_database_errors_are_sqlalchemys_and_the_connection_goes_back(
    env: AuthEnv, raw_reads: list[str]
) -> None:
    with env.app.app_context():
        engine = bookkeeping_engine(env.db)
        assert _lookup(env).find("alice") is not None
        with env.db.engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {env.model.__tablename__} RENAME TO gone")
        with pytest.raises(sa.exc.OperationalError, match="no such table") as info:
            _lookup(env).find("alice")
        assert not info.value.connection_invalidated
        assert engine.pool.checkedout() == 0
    assert raw_reads == ["alice", "alice"]


def test_a_dropped_connection_is_invalidated(
    env: AuthEnv, raw_reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    connections: list[Any] = []
    with env.app.app_context():
        engine = bookkeeping_engine(env.db)
        sa.event.listen(engine.pool, "checkout", lambda dbapi, *_: connections.append(dbapi))
        assert _lookup(env).find("alice") is not None
        with env.db.engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {env.model.__tablename__} RENAME TO gone")
        with monkeypatch.context() as patch:
            patch.setattr(engine.dialect, "is_disconnect", lambda *args: True)
            with pytest.raises(sa.exc.DBAPIError) as info:
                _lookup(env).find("alice")
        assert info.value.connection_invalidated
        with env.db.engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE gone RENAME TO {env.model.__tablename__}")
        assert _lookup(env).find("alice") is not None
    # The pool threw the failed connection away and opened a new one.
    assert len(connections) == 3 and connections[2] is not connections[0]
    assert raw_reads == ["alice"] * 3


# -- the instance handed to the method ------------------------------------------------


def test_the_instance_is_in_the_session_as_if_loaded(
    tmp_path: Path, serve: Callable[..., Any]
) -> None:
    seen: dict[str, Any] = {}
    stamp = datetime.datetime(2001, 2, 3, 4, 5, 6)

    def setup(rpc: RPCEnable, db: SQLAlchemy) -> None:
        @rpc.register
        @rpc.auth
        def inspect_user(user: Any) -> str:
            statements: list[str] = []

            def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                statements.append(" ".join(statement.split()).upper())

            sa.event.listen(db.engine, "before_cursor_execute", listen)
            try:
                state = sa.inspect(user)
                seen["persistent"] = state.persistent and user in db.session
                seen["unchanged"] = not db.session.dirty and not db.session.new
                seen["same"] = db.session.get(type(user), user.id) is user
                seen["queries before use"] = list(statements)
                seen["created_at"] = user.created_at
                db.session.commit()  # nothing to write
                seen["writes"] = [s for s in statements if not s.startswith("SELECT")]
                user.last_login = stamp
                db.session.commit()
            finally:
                sa.event.remove(db.engine, "before_cursor_execute", listen)
            return user.username

    env = make_env(tmp_path, serve=serve, setup=setup)
    env.add_user("alice")
    assert env.proxy().inspect_user(*v1("alice", env.keys["alice"])) == "alice"
    assert seen["persistent"] and seen["unchanged"] and seen["same"]
    assert seen["queries before use"] == []
    assert seen["created_at"] is not None
    assert seen["writes"] == []
    assert env.user("alice").last_login.replace(tzinfo=None) == stamp


def test_a_user_twice_in_one_request_is_one_instance(tmp_path: Path, serve: Any) -> None:
    users: list[Any] = []

    def setup(rpc: RPCEnable, db: SQLAlchemy) -> None:
        @rpc.register
        @rpc.auth
        def keep(user: Any) -> bool:
            users.append(user)
            return True

    env = make_env(tmp_path, serve=serve, setup=setup)
    key = env.add_user("alice")
    multi = xmlrpc.client.MultiCall(env.proxy())
    multi.keep(*v1("alice", key))
    multi.keep(*v1("alice", key))
    assert list(multi()) == [True, True]
    assert len(users) == 2 and users[0] is users[1]


def test_a_multicall_reads_each_user_once(tmp_path: Path, serve: Any, raw_reads: list[str]) -> None:
    env = make_env(tmp_path, serve=serve)
    alice, bob = env.add_user("alice"), env.add_user("bob")
    multi = xmlrpc.client.MultiCall(env.proxy())
    for name, key in [("alice", alice), ("bob", bob)] * 2 + [("alice", alice)]:
        multi.auth_echo(*v1(name, key), "x")
    assert list(multi()) == ["User alice says: x", "User bob says: x"] * 2 + ["User alice says: x"]
    assert raw_reads == ["alice", "bob"]
    # The next request reads again: a deactivation made between requests is seen.
    env.set_user("bob", active=False)
    multi = xmlrpc.client.MultiCall(env.proxy())
    multi.auth_echo(*v1("alice", alice), "x")
    multi.auth_echo(*v1("bob", bob), "x")
    first, second = multi().results
    assert first == ["User alice says: x"] and second["faultCode"] == 406
    assert raw_reads == ["alice", "bob", "alice", "bob"]


def test_a_json_rpc_batch_reads_its_user_once(
    tmp_path: Path, serve: Any, raw_reads: list[str]
) -> None:
    env = make_env(tmp_path, serve=serve)
    key = env.add_user("alice")
    point = JSONRPCPoint(env.url + "/rpc/", auth=("alice", key), auth_scheme="v1")
    with point, point.batch() as batch:
        for word in ("a", "b", "c"):
            batch.call("auth_echo", word)
    assert batch.results == [f"User alice says: {word}" for word in ("a", "b", "c")]
    assert raw_reads == ["alice"]


def test_a_key_changed_inside_a_request_is_read_again(
    tmp_path: Path, serve: Any, raw_reads: list[str]
) -> None:
    """A call whose signature fails against the row read earlier in its request reads it anew."""
    new_key = "a-key-set-by-the-first-call-0123456789"

    def setup(rpc: RPCEnable, db: SQLAlchemy) -> None:
        @rpc.register
        @rpc.auth
        def change_key(user: Any) -> bool:
            user.set_api_key(new_key)
            db.session.commit()
            return True

    env = make_env(tmp_path, serve=serve, setup=setup)
    old_key = env.add_user("alice")
    multi = xmlrpc.client.MultiCall(env.proxy())
    multi.change_key(*v1("alice", old_key))
    multi.auth_echo(*v1("alice", new_key), "x")  # signed with the key the first call set
    multi.auth_echo(*v1("alice", old_key), "x")  # the old key no longer works
    first, second, third = multi().results
    assert first == [True] and second == ["User alice says: x"]
    assert third["faultCode"] == 406
    # One read for the request, one when the new key did not match the row read
    # first, one when the old key did not match the row read second.
    assert raw_reads == ["alice", "alice", "alice"]


# -- a model of one's own: a UUID key (a type with result processing), a relationship --

member_db = SQLAlchemy()


class Team(member_db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "test_lookup_team"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))


class Member(BaseAPIUser, member_db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "test_lookup_member"
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("test_lookup_team.id"))
    team: Mapped[Team | None] = relationship()


def test_a_model_of_ones_own_on_both_databases(
    tmp_path: Path,
    serve: Callable[..., Any],
    db_url: str,
    raw_reads: list[str],
) -> None:
    app = new_app(tmp_path, RPCENABLE_USER_MODEL=Member, SQLALCHEMY_DATABASE_URI=db_url)
    member_db.init_app(app)
    rpc = RPCEnable()

    @rpc.register
    @rpc.auth
    def team_of(member: Member) -> list[Any]:
        same = member_db.session.get(Member, member.id) is member
        return [isinstance(member.id, uuid.UUID), same, member.team.name if member.team else ""]

    rpc.init_app(app, db=member_db)
    with app.app_context():
        member_db.create_all()
        team = Team(name="blue")
        member_db.session.add(team)
        member_db.session.commit()
        member, key = create_api_user(member_db, Member, "ann")
        member.team_id = team.id
        member_db.session.commit()
    proxy = xmlrpc.client.ServerProxy(serve(app).url + "/rpc/")
    try:
        assert proxy.team_of(*v1("ann", key)) == [True, True, "blue"]
        with app.app_context():
            member_db.session.execute(sa.update(Member).values(active=False))
            member_db.session.commit()
        assert fault_of(lambda: proxy.team_of(*v1("ann", key))).faultCode == 406
        # SQLite is read on the raw connection; a server with one autocommit
        # statement (tests/reliability/test_server_round_trips.py).
        assert raw_reads == (["ann", "ann"] if db_url.startswith("sqlite") else [])
    finally:
        with app.app_context():
            member_db.session.remove()
            for engine in (member_db.engine, bookkeeping_engine(member_db)):
                engine.dispose()


def test_keyed_macs_are_bounded(env: AuthEnv) -> None:
    authenticator = env.rpc.state(env.app).dispatcher.authenticator
    authenticator._macs = signing.KeyedMacs(size=2)
    for name in ("bob", "carol", "dave"):
        env.add_user(name)
        assert env.call_as(name) == f"User {name} says: x"
        assert 1 <= len(authenticator._macs) <= 2
    assert env.call_as() == "User alice says: x"


def test_keyed_macs_sign_as_the_clients_do() -> None:
    macs = signing.KeyedMacs(size=2)
    for key in ["k" * 43, "other-key-" * 4, "k" * 43, "third-key-" * 4]:
        for nonce in ("n" * 16, "m" * 16):
            expected = signing.compute_signature(nonce, 1700000000, "alice", key)
            assert macs.hexdigest(key, signing.message_v1(nonce, 1700000000, "alice")) == expected
    assert len(macs) <= 2


# -- the prepared statement itself ------------------------------------------------------


def test_prepared_select_processes_and_escapes_binds(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime),
        sa.Column("ref", sa.Uuid),
    )
    when, ref = datetime.datetime(2001, 2, 3, 4, 5, 6), uuid.uuid4()
    try:
        table.create(engine)
        with engine.begin() as conn:
            conn.execute(table.insert().values(id=1, at=when, ref=ref))
        # A DateTime is sent as SQLAlchemy's text on SQLite; "when.at" is a bind
        # name PostgreSQL's driver gets escaped; the Uuid comes back as a UUID.
        statement = sa.select(table.c.id, table.c.ref).where(
            table.c.at == sa.bindparam("when.at"), table.c.id > sa.bindparam("low", 0)
        )
        select = prepared.PreparedSelect(
            statement, [table.c.id.type, table.c.ref.type], engine.dialect
        )
        assert select.first(engine, {"when.at": when}) == (1, ref)
        assert select.first(engine, {"when.at": when, "low": 1}) is None
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()
