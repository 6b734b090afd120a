"""Shared benchmark tools: a gunicorn launcher, a load generator, alternating rounds and
percentile maths.

The load generator is wrk when it is installed (``apt-get install wrk``): written in C, it
spends little of the shared cores on itself, so a ratio to the trivial endpoint is not pulled
toward 1 by the client's own cost. Without it, closed-loop Python ``http.client`` clients in
separate processes stand in (a new connection per request, as gunicorn's sync workers close
each one); their figures are not comparable with wrk's. Every figure line says which was used.
Compare ratios, not absolute numbers, across machines. A shared machine's speed drifts by
several percent within a minute, so endpoints that are compared are measured in alternating
rounds and compared round by round.
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Headless Chromium from apt (never downloaded), driven by Playwright: the widget benchmark and the
# browser tests use it.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
# Headless Chromium says "HeadlessChrome", which the bot rules flag: counted clicks come from a person's browser.
CHROME_USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/130.0.0.0 Safari/537.36")  # fmt: skip


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
    """Start gunicorn the way `make run` does and wait until it answers a request."""
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", app_spec],
        cwd=ROOT, env={**os.environ, **(env or {})},
    )  # fmt: skip
    # The port accepts connections as soon as the master binds it; a worker answers only once it
    # has built its app (and its campaign index), which takes seconds on a busy machine.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
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
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


RequestFactory = Callable[[int], tuple[str, str, bytes | None, dict[str, str]]]

WRK = shutil.which("wrk")
# Closed-loop clients: wrk's connections, or the Python client's processes x threads.
CONNECTIONS = 8


def load_generator() -> str:
    """The name printed beside every throughput figure."""
    return "wrk" if WRK else "Python http.client (wrk not installed)"


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


def _python_load(port: int, factory: RequestFactory, duration_s: float, processes: int = 2) -> LoadResult:
    """Send requests from ``processes`` x threads closed-loop Python clients for ``duration_s``."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    started = time.monotonic()
    threads = CONNECTIONS // processes
    procs = [ctx.Process(target=_client_process, args=(port, factory, duration_s, threads, queue))
             for _ in range(processes)]  # fmt: skip
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = time.monotonic() - started
    latencies = [lat for result in results for lat in result[0]]
    errors = sum(result[1] for result in results)
    return LoadResult(len(latencies), errors, elapsed, percentile(latencies, 50), percentile(latencies, 99))


def _lua_string(value: str | bytes) -> str:
    text = value.decode() if isinstance(value, bytes) else value
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for this text


# wrk's script: each thread sends its own share of the requests in turn (thread k sends k, k + T,
# k + 2T, ...), so requests meant to be distinct (a new visitor per lead) are never sent twice
# while they last; at the end it prints one line of JSON.
_WRK_SCRIPT = """
local threads, ids = {}, 0
setup = function(thread) thread:set("id", ids); ids = ids + 1; table.insert(threads, thread) end
local step, i
init = function(args) step = tonumber(args[1]); i = tonumber(wrk.thread:get("id")) end
request = function()
  local r = reqs[(i % #reqs) + 1]
  i = i + step
  return r
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
_WRK_THREADS = 2


def _wrk_load(port: int, factory: RequestFactory, duration_s: float, first: int, count: int) -> LoadResult:
    """Load with wrk: ``count`` requests from ``factory(first)`` on, sent in turn by
    ``CONNECTIONS`` connections on two threads for ``duration_s``."""
    assert WRK is not None
    lines = ["reqs = {}"]
    for n in range(first, first + count):
        method, path, body, headers = factory(n)
        lua_headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
        lua_body = _lua_string(body) if body is not None else "nil"
        lines.append(f"reqs[{n - first + 1}] = wrk.format({_lua_string(method)}, {_lua_string(path)},"
                     f" {{{lua_headers}}}, {lua_body})")  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + _WRK_SCRIPT)
    try:
        output = subprocess.run(
            [WRK, f"-t{_WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{math.ceil(duration_s)}s", "--timeout", "10s",
             "-s", script.name, f"http://127.0.0.1:{port}", "--", str(_WRK_THREADS)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    line = next(line for line in output.splitlines() if line.startswith("WRK "))
    figures = json.loads(line[4:])
    return LoadResult(figures["requests"], figures["errors"], figures["duration_us"] / 1e6,
                      figures["p50_us"] / 1000, figures["p99_us"] / 1000)  # fmt: skip


class LoadGenerator:
    """Load for one endpoint after another; ``factory(n)`` makes request n. Requests are numbered on
    across calls, so a run never repeats one an earlier run sent (a lead from a new visitor each
    time) until ``distinct`` requests have gone by."""

    def __init__(self, distinct: int) -> None:
        self.distinct = distinct
        self._next = 0

    def run(self, port: int, factory: RequestFactory, duration_s: float) -> LoadResult:
        if WRK is None:
            return _python_load(port, factory, duration_s)
        # wrk takes its requests up front: enough for a fast server over the whole run.
        count = min(self.distinct, int(duration_s * 6_000) + 1_000)
        first = self._next
        self._next = (self._next + count) % self.distinct
        return _wrk_load(port, factory, duration_s, first, count)


@dataclass(frozen=True)
class Phase:
    """One endpoint to load: its name, the gunicorn app serving it, its requests, and what to do
    before each of its rounds (``prepare``)."""

    name: str
    app_spec: str
    factory: RequestFactory
    prepare: Callable[[], None] = field(default=lambda: None)
    # How many different requests the factory makes before they may repeat.
    distinct: int = 5_000


def measure_in_rounds(
    phases: Sequence[Phase], *, rounds: int, warmup_s: float, duration_s: float, env: dict[str, str]
) -> dict[str, list[LoadResult]]:
    """Each phase once per round, each on a fresh gunicorn with 2 workers: a warm-up, then the
    measured load. Prints a line per phase once every round is done."""
    results: dict[str, list[LoadResult]] = {phase.name: [] for phase in phases}
    generators = {phase.name: LoadGenerator(phase.distinct) for phase in phases}
    print(f"  load generator: {load_generator()}, {CONNECTIONS} connections", flush=True)
    for _ in range(rounds):
        for phase in phases:
            phase.prepare()
            port = free_port()
            process = start_gunicorn(phase.app_spec, port, env=env, workers=2)
            try:
                load = generators[phase.name]
                load.run(port, phase.factory, warmup_s)
                results[phase.name].append(load.run(port, phase.factory, duration_s))
            finally:
                stop(process)
    width = max(len(phase.name) for phase in phases)
    for phase in phases:
        print(f"  {phase.name:<{width}} {summarise(results[phase.name])}", flush=True)
    return results


def worst_p99(runs: Sequence[LoadResult]) -> float:
    return max(run.p99_ms for run in runs)


def summarise(runs: Sequence[LoadResult]) -> str:
    """The median round's requests per second and p50, the worst round's p99, and each round's rate."""
    rates = ", ".join(f"{run.rps:.0f}" for run in runs)
    p50 = statistics.median(run.p50_ms for run in runs)
    return (
        f"{statistics.median(run.rps for run in runs):6.0f} req/s  p50 {p50:6.2f} ms"
        f"  p99 {worst_p99(runs):6.2f} ms  (rounds: {rates}; {sum(run.errors for run in runs)} errors)"
    )


def ratio(runs: Sequence[LoadResult], baseline: Sequence[LoadResult]) -> tuple[float, list[float]]:
    """The median of the round-by-round ratios of two phases' requests per second, and the ratios."""
    ratios = [run.rps / base.rps for run, base in zip(runs, baseline, strict=True)]
    return statistics.median(ratios), ratios
