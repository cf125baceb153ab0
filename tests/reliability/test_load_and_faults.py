"""Load and faults against real servers: gunicorn (2 workers), PostgreSQL, Redis, an RQ worker.

PostgreSQL and Redis are private instances on free loopback ports, started
here, so that restarting and stopping them disturbs no other test. A bounded
load generator sends mixed calls (plain, slow, raising, faulting,
v1-authenticated, scheduling ``@postpone`` jobs); meanwhile a gunicorn worker
is killed with SIGKILL, PostgreSQL is restarted, Redis and PostgreSQL are
stopped and started again, and at the end gunicorn gets SIGTERM with jobs
queued. Asserted: every answered call has exactly one log row; every
accepted job ran or has a record saying why not; no record stays queued or
running after the drain; outages get fault -32400; the server answers again
without a restart. The figures are printed (``pytest -s`` or the summary).
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import reliability_helpers as rel
import sqlalchemy as sa

from flask_rpcenable.auth.users import create_api_user
from flask_rpcenable.health import OUTAGE_MESSAGE

pytestmark = pytest.mark.skipif(
    not (rel.pg_bin("pg_ctl") and rel.pg_bin("initdb") and shutil.which("redis-server")),
    reason="needs pg_ctl, initdb and redis-server (installed by .ci/run)",
)
pytest.importorskip("gunicorn")

SYSTEM_ERROR, APPLICATION_ERROR = -32400, -32500
KINDS = ["echo", "slow", "boom", "fault", "auth_echo", "schedule", "echo", "auth_echo"]
EXPECTED = {"echo": "ok", "slow": "ok", "boom": APPLICATION_ERROR, "fault": 42,
            "auth_echo": "ok", "schedule": "ok"}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[rel.Postgres, rel.RedisServer]]:
    pg = rel.Postgres()
    redis = rel.RedisServer()
    try:
        pg.start()
        redis.start()
        yield pg, redis
    finally:
        redis.close()
        pg.close()


def gunicorn(port: int, graceful: int = 30) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
        "--graceful-timeout", str(graceful), "--timeout", "30", "--log-level", "warning",
        rel.APP_SPEC,
    ]


def setup_database(pg: rel.Postgres, redis: rel.RedisServer, tmp: Any) -> tuple[str, str]:
    """Create the tables and an API user; return (user name, API key)."""
    app = rel.create_app(SQLALCHEMY_DATABASE_URI=pg.url, RPCENABLE_CACHE_REDIS_URL=redis.url)
    with app.app_context():
        rel.db.create_all()
        _, key = create_api_user(rel.db, rel.rpc.state(app).models.APIUser, "loader")
        rel.db.engine.dispose()
    return "loader", key


def rows_by_token(pg: rel.Postgres) -> collections.Counter[str]:
    engine = sa.create_engine(pg.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            params = conn.execute(sa.text("SELECT params FROM rpcenable_incoming_call")).scalars()
            return collections.Counter(
                token for text in params for token in set(re.findall(r"tok\d{6}x", text or ""))
            )
    finally:
        engine.dispose()


def job_states(pg: rel.Postgres) -> tuple[dict[str, tuple[str, str]], set[str]]:
    engine = sa.create_engine(pg.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            records = {
                row.job_id: (row.state, row.error or "")
                for row in conn.execute(
                    sa.text("SELECT job_id, state, error FROM rpcenable_background_job")
                )
            }
            done = set(conn.execute(sa.text("SELECT token FROM rel_done")).scalars())
        return records, done
    finally:
        engine.dispose()


def test_load_and_faults(
    servers: tuple[rel.Postgres, rel.RedisServer], tmp_path: Any, capsys: Any
) -> None:
    pg, redis = servers
    username, key = setup_database(pg, redis, tmp_path)
    config = {
        "SQLALCHEMY_DATABASE_URI": pg.url,
        "RPCENABLE_CACHE_REDIS_URL": redis.url,
        "RPCENABLE_RQ_URL": redis.url,
        "RPCENABLE_RQ_QUEUE": "reltest",
        "RPCENABLE_BACKGROUND": "rq",
        "INSTANCE": str(tmp_path / "instance"),
    }
    env = rel.child_env(**config)
    port = rel.free_port()
    load = rel.Load(f"http://127.0.0.1:{port}/rpc/", username, key)
    log = str(tmp_path / "servers.log")
    outage_tokens: set[str] = set()
    accepted: dict[str, str] = {}  # job id -> token
    start = time.monotonic()

    worker_args = [sys.executable, "-m", "flask", "--app", rel.APP_SPEC, "rpc", "worker"]
    with rel.started(gunicorn(port), env, log) as master, contextlib.ExitStack() as workers:
        # RQ's worker quits when Redis goes away under it (a supervisor restarts
        # it in production): this one is stopped before Redis is, another
        # started after.
        rq_worker = workers.enter_context(rel.started(worker_args, env, log))
        rel.wait_port(port)
        assert load.call("echo").result == "ok"

        # 1. Load, with a gunicorn worker killed (SIGKILL) on the way.
        killed: list[int] = []

        def kill_one(step: int) -> None:
            if step == 4 and not killed:
                pids = rel.worker_pids(master)
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])

        first = load.run(320, KINDS, threads=8, cap=60, during=kill_one)
        assert killed, "no gunicorn worker was killed"
        wrong = [o for o in first if o.result not in (EXPECTED[o.kind], "unanswered")]
        assert not wrong, wrong[:5]
        assert rel.wait_until(lambda: len(rel.worker_pids(master)) == 2, 20)

        # 2. PostgreSQL restarted while idle: no call may fail because of it.
        pg.stop()
        pg.start()
        after_restart = [load.call(kind) for kind in KINDS * 3]
        assert [o.result for o in after_restart] == [EXPECTED[o.kind] for o in after_restart]

        # 3. Redis stopped: authenticated and scheduling calls get -32400, fast.
        rel.stop_process(rq_worker, signal.SIGTERM, 30)
        redis.stop()
        during_redis = [load.call(kind) for kind in ("auth_echo", "schedule", "echo") * 4]
        for outcome in during_redis:
            expected = "ok" if outcome.kind == "echo" else SYSTEM_ERROR
            assert outcome.result == expected, outcome
            assert outcome.seconds < 5, outcome
        redis.start()
        workers.enter_context(rel.started(worker_args, env, log))
        assert rel.wait_until(lambda: load.call("auth_echo").result == "ok", 15)

        # 4. PostgreSQL stopped: authenticated calls get -32400 (their log rows
        #    cannot be written: left out of the row count below).
        pg.stop()
        try:
            during_pg = [load.call("auth_echo") for _ in range(6)]
        finally:
            pg.start()
        outage_tokens.update(o.token for o in during_pg)
        assert {o.result for o in during_pg} == {SYSTEM_ERROR}
        assert rel.wait_until(lambda: load.call("auth_echo").result == "ok", 15)

        # 5. More load after the faults: everything as expected again.
        after = load.run(120, KINDS, threads=8, cap=60)
        assert [o.result for o in after] == [EXPECTED[o.kind] for o in after]

        for outcome in load.outcomes:
            if outcome.kind == "schedule" and outcome.result == "ok":
                accepted[outcome.value] = outcome.token
        # RQ jobs: the worker drains the queue.
        def drained() -> bool:
            records = job_states(pg)[0]
            return all(records.get(job, ("queued",))[0] not in ("queued", "running")
                       for job in accepted)

        assert rel.wait_until(drained, 120, step=1.0), "RQ jobs still queued or running"

    # 6. SIGTERM with in-process jobs queued: the thread backend drains what it
    #    can within its shutdown timeout and records the rest, in time.
    env = rel.child_env(**{**config, "RPCENABLE_BACKGROUND": "thread",
                           "RPCENABLE_BACKGROUND_SHUTDOWN_TIMEOUT": 2,
                           "RPCENABLE_BACKGROUND_WORKERS": 2})
    with rel.started(gunicorn(port, graceful=10), env, log) as master:
        rel.wait_port(port)
        queued = load.run(120, ["schedule"], threads=8, cap=60, delay=0.1)
        assert {o.result for o in queued} == {"ok"}
        accepted.update({o.value: o.token for o in queued})
        stopping = time.monotonic()
        rel.stop_process(master, signal.SIGTERM, 30)
        stop_seconds = time.monotonic() - stopping
    assert stop_seconds < 10, f"gunicorn took {stop_seconds:.1f} s to stop (graceful timeout 10)"

    # -- the checks ------------------------------------------------------------------
    rows = rows_by_token(pg)
    answered = [o for o in load.outcomes if o.result != "unanswered"]
    unanswered = [o for o in load.outcomes if o.result == "unanswered"]
    checked = [o for o in answered if o.token not in outage_tokens]
    missing = [o for o in checked if rows[o.token] != 1]
    assert not missing, f"{len(missing)} answered calls without exactly one row: {missing[:5]}"

    records, done = job_states(pg)
    ran = {job for job, token in accepted.items() if token in done}
    explained = {
        job for job in accepted.keys() - ran
        if records.get(job, ("", ""))[0] == "failed" and records[job][1]
    }
    lost = accepted.keys() - ran - explained
    assert not lost, f"{len(lost)} accepted jobs neither ran nor say why: {sorted(lost)[:5]}"
    pending = [job for job, (state, _) in records.items() if state in ("queued", "running")]
    assert not pending, f"{len(pending)} records still queued/running"

    faults = collections.Counter(o.result for o in load.outcomes)
    seconds = [o.seconds for o in answered]
    summary = (
        f"load/fault suite: N={len(load.outcomes)} calls, answered {len(answered)}, "
        f"unanswered (worker killed) {len(unanswered)}, results {dict(faults)}, "
        f"p50={rel.percentile(seconds, 0.5) * 1000:.1f} ms "
        f"p99={rel.percentile(seconds, 0.99) * 1000:.1f} ms; "
        f"rows checked {len(checked)} (outage calls left out {len(outage_tokens)}); "
        f"jobs accepted {len(accepted)}, ran {len(ran)}, failed with a reason {len(explained)}; "
        f"SIGTERM to exit {stop_seconds:.1f} s; whole test {time.monotonic() - start:.0f} s"
    )
    with capsys.disabled():
        print("\n" + summary)
    assert OUTAGE_MESSAGE  # the documented message the -32400 faults carry
