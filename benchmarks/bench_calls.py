"""Honest per-call benchmarks of flask-rpcenable against the floor and its peers.

Run by hand (not collected by pytest)::

    pip install Flask-XML-RPC-Re==0.2.0 "django-modern-rpc>=2,<3" "Django>=5,<6" \
        gunicorn psycopg2-binary          # the benchmark's extra dependencies
    bash .ci/services && . .ci/services.env   # optional: PostgreSQL for the logged-to-PG case
    python benchmarks/bench_calls.py              # 1.5 to 2 minutes on 2 cores
    python benchmarks/bench_calls.py --quick      # fewer rounds, a rough look
    python benchmarks/bench_calls.py --no-serve   # skip the gunicorn throughput run

What it does, and why (see docs/performance.rst):

* Every server is a WSGI app called **directly** (an environ and a
  ``start_response``, the response iterable read and closed), never through
  a test client, which would add its own ~120 us to each call.
* Every Flask app, ours and the others, has the **same** ``SECRET_KEY``: with
  a key Flask opens a cookie session on every request, so each side pays it.
  Django gets the same value in ``SECRET_KEY`` (it has no per-request session
  work without ``SessionMiddleware``).
* **The floor** is a plain Flask view around the standard library's
  ``xmlrpc.server.SimpleXMLRPCDispatcher``: the least any Flask XML-RPC
  endpoint can cost. Every ratio is to a number measured in the same run.
* The cases run **interleaved**: each round runs every case once (a batch of
  calls sized to ~``--batch-ms``, at least ``--min-calls``), so a busy spell of the (shared) machine
  is spread over all cases. A case's number is the **median** over rounds of
  its per-call mean in that round.
* The **garbage collector stays on**, as in production, and the process
  holds what a real one does: our apps with SQLAlchemy and Flask-Admin set up
  (Django and the peers too, which every side pays alike).
* Every response is decoded once before timing and compared with the
  expected value, so a case measures a success, never a fault.

Cases: the floor, Flask-XML-RPC-Re, django-modern-rpc, and flask-rpcenable
plain (log off), logged (embedded SQLite file in WAL mode, and PostgreSQL
when ``RPCENABLE_TEST_POSTGRES_URL`` is set), v1- and v2-authenticated (log
off); payloads: a small echo, an echo of 2,000 structs, a 100-entry
``system.multicall``, an echo of a 5 MB base64 value. Then the peak Python
memory (tracemalloc) of one 5 MB call per server, and a throughput run under
gunicorn (2 sync workers) on 127.0.0.1 with a bounded load generator.

Its parts: ``bench_wsgi.py`` (payloads, calling a WSGI app directly),
``bench_servers.py`` (the apps), ``bench_serve.py`` (the gunicorn run);
this script times the cases and prints the tables.

Only the public API of flask_rpcenable is used: API users are created with
the ``flask rpc users create`` command, scheme v2 headers are signed here
from the documented wire contract (docs/auth.rst).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import tracemalloc
import xmlrpc.client
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bench_serve import print_throughput, throughput
from bench_servers import API_KEY, USERNAME, Server, build_servers, sign_v2, version
from bench_wsgi import Payload, call_wsgi, encode_call, payloads

import flask_rpcenable
from flask_rpcenable import generate_auth_args


@dataclass
class Case:
    server: Server
    payload: Payload
    bodies: Callable[[int], list[tuple[bytes, dict[str, str] | None]]]
    number: int = 1
    samples: list[float] = field(default_factory=list)  # per-call mean of each round, us

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def make_case(server: Server, payload: Payload) -> Case:
    if server.protocol == "jsonrpc":
        request = {"jsonrpc": "2.0", "method": "echo", "params": list(payload.args), "id": 1}
        json_body = json.dumps(request).encode()
        json_headers = {"CONTENT_TYPE": "application/json"}

        def bodies(n: int) -> list[tuple[bytes, dict[str, str] | None]]:
            return [(json_body, json_headers)] * n

        return Case(server, payload, bodies)
    if server.auth == "v1":
        method = "auth_echo"

        def bodies(n: int) -> list[tuple[bytes, dict[str, str] | None]]:
            auth = lambda: generate_auth_args(USERNAME, API_KEY)  # noqa: E731
            return [(encode_call(payload, method, auth), None) for _ in range(n)]

    elif server.auth == "v2":
        body = encode_call(payload, "auth_echo", None)

        def bodies(n: int) -> list[tuple[bytes, dict[str, str] | None]]:
            return [(body, {"HTTP_AUTHORIZATION": sign_v2(body, server.path)}) for _ in range(n)]

    else:
        body = encode_call(payload, "echo", None)

        def bodies(n: int) -> list[tuple[bytes, dict[str, str] | None]]:
            return [(body, None)] * n

    return Case(server, payload, bodies)


def check(case: Case) -> None:
    """One call whose response must decode to the expected value."""
    body, headers = case.bodies(1)[0]
    data = call_wsgi(case.server.app, case.server.path, body, headers)
    if case.server.protocol == "jsonrpc":
        result = json.loads(data)["result"]
    else:
        (result,), _ = xmlrpc.client.loads(data, use_builtin_types=True)
    if result != case.payload.expected():
        where = f"{case.server.key}/{case.payload.key}"
        raise AssertionError(f"{where}: unexpected {str(result)[:200]}")


def run_batch(case: Case) -> float:
    """Per-call mean of one batch, in microseconds (signing is done before timing)."""
    prepared = case.bodies(case.number)
    app, path = case.server.app, case.server.path
    start = time.perf_counter_ns()
    for body, headers in prepared:
        call_wsgi(app, path, body, headers)
    return (time.perf_counter_ns() - start) / case.number / 1000


# -- the machine ------------------------------------------------------------------------


def describe_machine() -> None:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    print(f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}")
    print(f"Python {platform.python_version()} ({platform.python_implementation()})")
    where = os.path.dirname(os.path.dirname(os.path.abspath(flask_rpcenable.__file__)))
    commit = subprocess.run(
        ["git", "-C", where, "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", where, "status", "--porcelain", "--", "flask_rpcenable"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(
        f"flask_rpcenable from {where}"
        + (f" at {commit[:70]}" if commit else " (not a git checkout)")
        + (" with uncommitted changes" if dirty else "")
    )
    names = [
        "flask-rpcenable",
        "Flask",
        "Werkzeug",
        "SQLAlchemy",
        "Flask-SQLAlchemy",
        "Flask-Admin",
        "Flask-XML-RPC-Re",
        "django-modern-rpc",
        "Django",
        "gunicorn",
        "psycopg2-binary",
    ]
    print("packages: " + ", ".join(f"{n} {version(n)}" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 15; quick 5)")
    parser.add_argument(
        "--batch-ms",
        type=float,
        help="target time of one case in one round (default 60 ms; quick 25)",
    )
    parser.add_argument(
        "--min-calls",
        type=int,
        help="fewest calls in a batch (default 3; quick 1): a batch of big calls then "
        "averages over the garbage collector's full collections instead of one call "
        "falling on either side of one",
    )
    parser.add_argument("--quick", action="store_true", help="a rough look in about 30 s")
    parser.add_argument("--no-serve", action="store_true", help="skip the gunicorn run")
    parser.add_argument("--requests", type=int, default=3000, help="requests per served app")
    parser.add_argument("--concurrency", type=int, default=4, help="load generator threads")
    parser.add_argument("--time-cap", type=float, default=10.0, help="seconds per served app")
    args = parser.parse_args()
    quick = {"rounds": 5, "batch_ms": 25.0, "min_calls": 1, "requests": 1000, "time_cap": 4.0}
    full = {"rounds": 15, "batch_ms": 60.0, "min_calls": 3}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) in (None, parser.get_default(name)):
            setattr(args, name, value)
    t0 = time.perf_counter()
    describe_machine()
    assert gc.isenabled()

    instance = tempfile.mkdtemp(prefix="bench_calls_")
    try:
        servers, notes = build_servers(instance)
        loads = payloads()
        cases = [
            make_case(s, p)
            for p in loads
            for s in servers
            if s.protocol == "xmlrpc" or p.key == "small"
        ]
        for case in cases:
            check(case)
        # Calibrate: calls per batch so that one batch takes about --batch-ms.
        for case in cases:
            once = run_batch(case)
            case.number = max(args.min_calls, min(2000, int(args.batch_ms * 1000 / once)))
        print(
            f"gc on (thresholds {gc.get_threshold()}), {len(gc.get_objects()):,} tracked "
            f"objects after setup; {len(cases)} cases x {args.rounds} interleaved rounds"
        )
        for note in notes:
            print("  " + note)

        for _ in range(args.rounds):
            for case in cases:
                case.samples.append(run_batch(case))
        timed = time.perf_counter() - t0

        report(servers, loads, cases, args.rounds)
        memory(servers, loads[-1])
        named_ratios(cases)
    finally:
        shutil.rmtree(instance, ignore_errors=True)

    if not args.no_serve:
        rows = throughput(args.requests, args.concurrency, args.time_cap)
        if rows:
            print_throughput(rows, args.requests, args.concurrency, args.time_cap)
    print(f"\ntimed rounds took {timed:.0f} s; whole run {time.perf_counter() - t0:.0f} s")


def report(servers: list[Server], loads: list[Payload], cases: list[Case], rounds: int) -> None:
    by = {(c.server.key, c.payload.key): c for c in cases}
    print(
        f"\nMicroseconds per call (median over {rounds} rounds of each round's mean), "
        "and x the floor for the same payload, measured in this run"
    )
    width = 40
    header = f"  {'server':<{width}}" + "".join(f"{p.label:>24}" for p in loads)
    print(header)
    for s in servers:
        line = f"  {s.label:<{width}}"
        for p in loads:
            case = by.get((s.key, p.key))
            if case is None:  # not measured for this server (JSON-RPC: small echo only)
                line += f"{'-':>14}  {'':<7}"
                continue
            floor = by[("floor", p.key)].median
            line += f"{case.median:>14,.0f} x{case.median / floor:<7.2f}"
        print(line.rstrip())
    spreads = sorted(((max(c.samples) - min(c.samples)) / c.median, c) for c in cases)
    numbers = [c.number for c in cases]
    print(
        f"  calls per batch: {min(numbers)} to {max(numbers)}; noisiest cases (max - min of "
        "the rounds, over the median): "
        + ", ".join(f"{c.server.key}/{c.payload.key} {s:.0%}" for s, c in spreads[-3:][::-1])
    )


def memory(servers: list[Server], payload: Payload) -> None:
    print(
        f"\nPeak Python memory of one {payload.label} call (tracemalloc, after the timed "
        "rounds; request body included)"
    )
    for s in servers:
        if s.protocol != "xmlrpc":
            continue
        case = make_case(s, payload)
        body, headers = case.bodies(1)[0]
        gc.collect()
        tracemalloc.start()
        try:
            call_wsgi(s.app, s.path, body, headers)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        print(
            f"  {s.label:<40}{peak / 1e6:8.1f} MB  ({peak / len(body):.1f}x the "
            f"{len(body) / 1e6:.1f} MB body)"
        )


NAMED = [
    ("small call, ours log off / floor", ("ours", "small"), ("floor", "small")),
    ("small call, JSON-RPC / XML-RPC (issue 11)", ("ours_json", "small"), ("ours", "small")),
    ("small call, logged (SQLite) / ours plain", ("ours_sqlite", "small"), ("ours", "small")),
    ("small call, logged (PostgreSQL) / ours plain", ("ours_pg", "small"), ("ours", "small")),
    ("2,000-struct echo, logged (SQLite) / plain", ("ours_sqlite", "structs"), ("ours", "structs")),
    ("5 MB base64 echo, logged (SQLite) / plain", ("ours_sqlite", "base64"), ("ours", "base64")),
    ("100-multicall, logged (SQLite) / plain", ("ours_sqlite", "multicall"), ("ours", "multicall")),
    ("100-multicall, logged (PostgreSQL) / plain", ("ours_pg", "multicall"), ("ours", "multicall")),
    ("small call, v1-authenticated / ours plain", ("ours_v1", "small"), ("ours", "small")),
    (
        "small call, v1, opt-in user cache / ours plain",
        ("ours_v1_cached", "small"),
        ("ours", "small"),
    ),
    ("small call, v2-authenticated / ours plain", ("ours_v2", "small"), ("ours", "small")),
    (
        "2,000-struct echo, ours / floor (admin, SQLAlchemy loaded, gc on)",
        ("ours", "structs"),
        ("floor", "structs"),
    ),
    ("100-multicall, ours / floor", ("ours", "multicall"), ("floor", "multicall")),
    ("5 MB base64 echo, ours / floor", ("ours", "base64"), ("floor", "base64")),
]


def named_ratios(cases: Iterable[Case]) -> None:
    by = {(c.server.key, c.payload.key): c.median for c in cases}
    print("\nNamed ratios (issues 12 and 13 targets), medians of this run")
    for label, top, bottom in NAMED:
        if top in by and bottom in by:
            print(f"  {label:<66} {by[top] / by[bottom]:6.2f}")
        else:
            print(f"  {label:<66}    n/a (case skipped)")


if __name__ == "__main__":
    main()
