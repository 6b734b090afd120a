"""Shared benchmark tools: a gunicorn launcher, a load generator, alternating rounds and
percentile maths.

The load generator runs in separate processes (keep-alive off, as gunicorn's sync
workers close each connection), so figures from one run are comparable with
each other; compare ratios, not absolute numbers, across machines. A shared
machine's speed drifts by several percent within a minute, so endpoints that are
compared are measured in alternating rounds and compared round by round.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Phase:
    """One endpoint to load: its name, the gunicorn app serving it, its requests, and what to do
    before each of its rounds (``prepare``)."""

    name: str
    app_spec: str
    factory: RequestFactory
    prepare: Callable[[], None] = field(default=lambda: None)


def measure_in_rounds(
    phases: Sequence[Phase], *, rounds: int, warmup_s: float, duration_s: float, env: dict[str, str]
) -> dict[str, list[LoadResult]]:
    """Each phase once per round, each on a fresh gunicorn with 2 workers: a warm-up, then the
    measured load. Prints a line per phase once every round is done."""
    results: dict[str, list[LoadResult]] = {phase.name: [] for phase in phases}
    for _ in range(rounds):
        for phase in phases:
            phase.prepare()
            port = free_port()
            process = start_gunicorn(phase.app_spec, port, env=env, workers=2)
            try:
                generate_load(port, phase.factory, duration_s=warmup_s)
                results[phase.name].append(generate_load(port, phase.factory, duration_s=duration_s))
            finally:
                stop(process)
    width = max(len(phase.name) for phase in phases)
    for phase in phases:
        print(f"  {phase.name:<{width}} {summarise(results[phase.name])}", flush=True)
    return results


def summarise(runs: Sequence[LoadResult]) -> str:
    """The median round's requests per second, latency over every round, and each round's rate."""
    latencies = [lat for run in runs for lat in run.latencies_ms]
    rates = ", ".join(f"{run.rps:.0f}" for run in runs)
    return (
        f"{statistics.median(run.rps for run in runs):6.0f} req/s  p50 {percentile(latencies, 50):6.2f} ms"
        f"  p99 {percentile(latencies, 99):6.2f} ms  (rounds: {rates}; {sum(run.errors for run in runs)} errors)"
    )


def ratio(runs: Sequence[LoadResult], baseline: Sequence[LoadResult]) -> tuple[float, list[float]]:
    """The median of the round-by-round ratios of two phases' requests per second, and the ratios."""
    ratios = [run.rps / base.rps for run, base in zip(runs, baseline, strict=True)]
    return statistics.median(ratios), ratios
