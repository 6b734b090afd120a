"""Shared benchmark tools: a gunicorn launcher, a load generator and percentile maths.

The load generator runs in separate processes (keep-alive off, as gunicorn's sync
workers close each connection), so figures from one run are comparable with
each other; compare ratios, not absolute numbers, across machines.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def start_gunicorn(
    app_spec: str, port: int, env: dict[str, str] | None = None, workers: int = 2
) -> subprocess.Popen[bytes]:
    """Start gunicorn the way `make run` does and wait until it accepts connections."""
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", app_spec],
        cwd=ROOT, env={**os.environ, **(env or {})},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}")
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("gunicorn did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        lat = self.latencies_ms
        return (
            f"{self.rps:8.0f} req/s  p50 {percentile(lat, 50):6.2f} ms  p99 {percentile(lat, 99):6.2f} ms"
            f"  ({self.requests} requests, {self.errors} errors)"
        )


RequestFactory = Callable[[int], tuple[str, str, bytes | None, dict[str, str]]]


def _client_process(
    port: int, factory: RequestFactory, duration_s: float, threads: int, queue: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    import threading

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + duration_s

    def run(seed: int) -> None:
        nonlocal errors
        local: list[float] = []
        local_errors = 0
        n = seed
        while time.monotonic() < stop_at:
            method, path, body, headers = factory(n)
            n += threads * 1000
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status >= 400:
                    local_errors += 1
            except OSError:
                local_errors += 1
            local.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(local)
            errors += local_errors

    workers = [threading.Thread(target=run, args=(os.getpid() * 7919 + i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put((latencies, errors))


def generate_load(
    port: int, factory: RequestFactory, duration_s: float = 5.0, processes: int = 2, threads: int = 4
) -> LoadResult:
    """Send requests from ``processes`` x ``threads`` closed-loop clients for ``duration_s``."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    started = time.monotonic()
    procs = [ctx.Process(target=_client_process, args=(port, factory, duration_s, threads, queue))
             for _ in range(processes)]  # fmt: skip
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = time.monotonic() - started
    latencies = [lat for result in results for lat in result[0]]
    return LoadResult(len(latencies), sum(result[1] for result in results), elapsed, latencies)
