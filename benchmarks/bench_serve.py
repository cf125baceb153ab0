"""The throughput run: gunicorn (2 sync workers) on 127.0.0.1 and a bounded load generator.

Each app is served in turn (the floor, ours plain, ours logged to the
embedded SQLite file); client threads send small echo calls until a number
of requests or a time cap is reached, whichever comes first.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client

from bench_servers import ours_app

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(port: int, body: bytes, total: int, concurrency: int, cap: float) -> dict[str, float]:
    """``total`` POSTs from ``concurrency`` threads, stopping after ``cap`` seconds."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    remaining = [total]
    deadline = time.monotonic() + cap

    def worker() -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            start = time.perf_counter_ns()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/rpc/", body, {"Content-Type": "text/xml"})
                response = conn.getresponse()
                response.read()
                conn.close()
                ok = response.status == 200
            except OSError:
                ok = False
            elapsed = (time.perf_counter_ns() - start) / 1e6
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {
        "done": len(latencies),
        "errors": errors,
        "rps": len(latencies) / wall,
        "p50": pick(0.50) if latencies else float("nan"),
        "p99": pick(0.99) if latencies else float("nan"),
        "wall": wall,
    }


def throughput(total: int, concurrency: int, cap: float) -> list[tuple[str, dict[str, float]]]:
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or shutil.which(
        "gunicorn"
    )
    if gunicorn is None:
        print("\ngunicorn is not installed: throughput run skipped (pip install gunicorn)")
        return []
    body = xmlrpc.client.dumps(("Hello, world!",), "echo").encode()
    rows = []
    for kind, label in [
        ("floor", "floor"),
        ("ours", "ours, plain"),
        ("ours_logged", "ours, logged (SQLite)"),
    ]:
        instance = tempfile.mkdtemp(prefix="bench_gunicorn_")
        port = free_port()
        env = dict(os.environ, BENCH_INSTANCE=instance, PYTHONWARNINGS="ignore")
        if kind != "floor":
            # Create the embedded database's tables here, so that the two
            # workers (each building its own app, no --preload) never race.
            ours_app(kind, instance, log=kind == "ours_logged", create_user=False)
        proc = subprocess.Popen(
            [
                gunicorn,
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "--chdir",
                HERE,
                "--log-level",
                "warning",
                f"bench_servers:gunicorn_app({kind!r})",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            for _ in range(200):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if proc.poll() is not None:
                        raise RuntimeError(proc.stderr.read().decode()[-2000:]) from None
                    time.sleep(0.1)
            load(port, body, 100, concurrency, 10)  # warm up both workers
            rows.append((label, load(port, body, total, concurrency, cap)))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            shutil.rmtree(instance, ignore_errors=True)
    return rows


def print_throughput(
    rows: list[tuple[str, dict[str, float]]], requests: int, concurrency: int, cap: float
) -> None:
    """The table of :func:`throughput`'s results."""
    print(
        f"\nThroughput under gunicorn (2 sync workers, 127.0.0.1), small echo; "
        f"{concurrency} client threads, at most {requests} requests or "
        f"{cap:g} s each (client and server share the {os.cpu_count()} cores)"
    )
    print(f"  {'app':<26}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'done':>7}{'errors':>7}")
    for label, r in rows:
        print(
            f"  {label:<26}{r['rps']:9.0f}{r['p50']:9.2f}{r['p99']:9.2f}"
            f"{r['done']:7d}{r['errors']:7d}"
        )
