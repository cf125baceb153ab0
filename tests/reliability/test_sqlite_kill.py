"""Call log on the embedded SQLite database: no answered call loses its row to SIGKILL.

Issue 13: with no database configured the extension logs to its own SQLite
file (``rpcenable.sqlite`` in the instance folder, WAL, ``synchronous=NORMAL``)
and commits each request's log rows before the response is sent. Here
gunicorn (2 sync workers) serves the app of :func:`create_app` below (its
module is this file; config from ``RELTEST_*`` variables), a few thousand
``echo`` calls with unique tokens go to it from several threads, and
meanwhile a worker is killed with SIGKILL, again and again (one at a time,
the other serving on). Afterwards the SQLite file is read directly: every
answered call must have exactly one row. Needs no server but gunicorn.

Why several kills: a kill lands between a response and a late log write
only now and then. With rows written after the response (a broken copy of
this test), a single kill failed the test in 1 run of 10; 10 to 12 kills
(what this test does in ~8 s) did in 7 runs of 8.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import sqlite3
import sys
import threading
import time
from typing import Any

import pytest
import reliability_helpers as rel
from flask import Flask

from flask_rpcenable import RPCEnable

pytest.importorskip("gunicorn")
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds gunicorn's workers with ps and /proc"
)

#: The app spec gunicorn loads: this module, found through ``PYTHONPATH``.
APP_SPEC = f"{__name__.rpartition('.')[2]}:create_app()"
HERE = os.path.dirname(os.path.abspath(__file__))
CALLS, THREADS = 6000, 8
#: At most this many workers are killed, one at a time (a new one needs ~0.5 s to
#: import the app), until 90 % of the calls are done.
KILLS = 12
TOKEN = re.compile(r"tok\d{6}x")

rpc = RPCEnable()
@rpc.register
def echo(token: str) -> str:
    return token


def create_app(instance_path: str | None = None) -> Flask:
    """The app with no database given: the call log goes to the embedded SQLite file."""
    app = Flask(
        "sqlite_kill",
        instance_path=instance_path or os.environ.get("RELTEST_INSTANCE", "/tmp/reltest"),
    )
    app.config.update(
        SECRET_KEY="reliability-test-secret-not-for-production",
        RPCENABLE_LOG_INCOMING=True,
        RPCENABLE_ADMIN_ENABLED=False,
        RPCENABLE_CACHE_TYPE="SimpleCache",  # the in-process nonce cache: no Redis
    )
    app.config.from_prefixed_env("RELTEST")
    rpc.init_app(app)  # no db: the embedded one
    return app


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def has_open(pid: int, path: str) -> bool:
    """Whether process ``pid`` has the file ``path`` open (a worker that has logged a call)."""
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                    return True
    return False


def rows_by_token(path: str) -> collections.Counter[str]:
    """How many ``rpcenable_incoming_call`` rows name each token in their params."""
    conn = sqlite3.connect(path)
    try:
        params = [text for (text,) in conn.execute("SELECT params FROM rpcenable_incoming_call")]
    finally:
        conn.close()
    return collections.Counter(
        token for text in params for token in set(TOKEN.findall(text or ""))
    )


def test_sqlite_log_rows_survive_a_killed_worker(tmp_path: Any, capsys: Any) -> None:
    start = time.monotonic()
    instance = str(tmp_path / "instance")
    # The embedded file and its tables are made here, once (not by two workers at once).
    app = create_app(instance)
    with app.app_context():
        engine = rpc.state(app).db.engine
        assert engine.dialect.name == "sqlite"
        database = str(engine.url.database)
        with engine.connect() as conn:
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        engine.dispose()
    assert database == os.path.join(instance, "rpcenable.sqlite")
    assert (journal, synchronous) == ("wal", 1), "not WAL with synchronous=NORMAL"
    real_database = os.path.realpath(database)  # as /proc/<pid>/fd shows it

    env = rel.child_env(INSTANCE=instance)
    env["PYTHONPATH"] = HERE + os.pathsep + env["PYTHONPATH"]
    port = rel.free_port()
    args = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
        "--worker-class", "sync", "--timeout", "30", "--graceful-timeout", "10",
        "--log-level", "warning", APP_SPEC,
    ]
    load = rel.Load(f"http://127.0.0.1:{port}/rpc/", "", "")
    kills: list[tuple[int, int]] = []  # (worker pid, calls done when it was killed)
    load_done = threading.Event()

    with rel.started(args, env, str(tmp_path / "gunicorn.log")) as master:
        rel.wait_port(port)
        two_workers = rel.wait_until(lambda: len(rel.worker_pids(master)) == 2, 20)
        assert two_workers, "gunicorn has no 2 workers"
        assert load.call("echo").result == "ok"

        def kill_workers() -> None:
            """Until 90 % of the calls are done, SIGKILL one of the two workers whenever
            both are serving (have the SQLite file open), so the other one serves on."""
            while (
                not load_done.is_set() and len(load.outcomes) < 0.9 * CALLS and len(kills) < KILLS
            ):
                # A killed worker stays in ps as a zombie until the master reaps it.
                pids = [pid for pid in rel.worker_pids(master) if pid not in dict(kills)]
                if len(pids) == 2 and all(has_open(pid, real_database) for pid in pids):
                    kills.append((min(pids), len(load.outcomes)))
                    os.kill(min(pids), signal.SIGKILL)
                time.sleep(0.002)

        killer = threading.Thread(target=kill_workers, daemon=True)
        killer.start()
        outcomes = load.run(CALLS, ["echo"], threads=THREADS, cap=25)
        load_done.set()
        killer.join(5)
        assert kills, "no gunicorn worker was killed"
        killed = [pid for pid, _ in kills]
        assert rel.wait_until(lambda: not any(alive(pid) for pid in killed), 10), killed

        def replaced() -> bool:
            workers = rel.worker_pids(master)
            return len(workers) == 2 and not set(killed) & set(workers)

        assert rel.wait_until(replaced, 20), "gunicorn did not replace the killed workers"
        rel.stop_process(master)
        assert master.returncode is not None

    rows = rows_by_token(database)
    answered = [o for o in outcomes if o.result == "ok"]
    unanswered = [o for o in outcomes if o.result == "unanswered"]
    # Calls that finished more than THREADS calls after the last kill started after it.
    after_kill = [o for o in load.outcomes[kills[-1][1] + THREADS :] if o.result == "ok"]
    missing = [o.token for o in answered if rows[o.token] != 1]
    summary = (
        f"embedded SQLite, {len(kills)} workers SIGKILLed: {len(outcomes)} calls, answered "
        f"{len(answered)}, unanswered {len(unanswered)}, answered after the last kill "
        f"{len(after_kill)}, log rows {sum(rows.values())} ({len(rows)} tokens), answered "
        f"without exactly one row {len(missing)}, {time.monotonic() - start:.1f} s"
    )
    with capsys.disabled():
        print("\n" + summary)

    assert len(outcomes) == CALLS, summary
    assert not [o for o in outcomes if o.result not in ("ok", "unanswered")], summary
    assert all(o.value == o.token for o in answered), summary
    assert len(answered) >= 0.9 * CALLS, summary
    assert after_kill, summary
    assert not missing, f"{summary}; e.g. {missing[:5]} ({[rows[t] for t in missing[:5]]} rows)"
    assert all(count == 1 for count in rows.values()), summary
