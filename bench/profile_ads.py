"""Where a GET /v1/ads request's time goes in a gunicorn worker: a py-spy profile under wrk load.

Builds the benchmark's catalog (1,000 active campaigns), serves it with gunicorn (2 workers) as
``bench_serving`` does, loads it with wrk, samples one worker with py-spy, and prints each
function's share of that worker's samples (its own time, and with what it calls) in microseconds
per request. Needs wrk and py-spy (``requirements-dev.txt``); run it as ``.venv/bin/python
bench/profile_ads.py``. Not part of ``make bench``.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.bench_serving as serving
from bench.common import BIN, LoadResult, _wrk_load, free_port, start_gunicorn, stop

LOAD_S = 20
SAMPLE_S = 12
RATE = 250


def _frame(raw: str) -> str:
    """``function (path/to/module.py:line)`` as ``module.py:function``."""
    name, _, where = raw.partition(" (")
    return f"{Path(where.split(':')[0]).name}:{name}" if where else name


def main() -> int:
    from flask_migrate import upgrade

    from adserver import create_app, embedded_redis
    from config.settings import load_settings

    rng = random.Random(20261126)
    settings = load_settings()
    app = create_app(settings)
    out = Path(tempfile.mkdtemp(prefix="adserver-profile-"))
    try:
        with app.app_context():
            upgrade()
            ids, secret = serving.build_catalog(rng)
            serving.activate(ids, 1_000)
        zips = serving._zip_codes()
        paths = [f"/v1/ads?{urlencode(serving.request_params(rng, zips))}" for _ in range(5_000)]
        headers = {"Authorization": f"Bearer {secret}"}
        port = free_port()
        web = start_gunicorn("wsgi:app", port, env=serving.ENV, workers=2)
        try:
            workers = subprocess.run(["pgrep", "-P", str(web.pid)], capture_output=True, text=True).stdout.split()
            load: list[LoadResult] = []

            def ads_request(n: int) -> tuple[str, str, bytes | None, dict[str, str]]:
                return "GET", paths[n % len(paths)], None, headers

            loader = threading.Thread(target=lambda: load.append(_wrk_load(port, ads_request, LOAD_S, 0, 5_000)))
            loader.start()
            time.sleep(4)  # warm: caches, pools, campaign values
            raw = out / "samples.txt"
            subprocess.run([str(BIN / "py-spy"), "record", "--pid", workers[0], "--duration", str(SAMPLE_S),
                            "--rate", str(RATE), "--format", "raw", "--output", str(raw), "--nonblocking"],
                           check=True, capture_output=True)  # fmt: skip
            loader.join()
        finally:
            stop(web)
        per_worker_rps = load[0].rps / 2
        own: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [_frame(f) for f in stack.split(";")]
            n = int(count)
            total += n
            own[frames[-1]] += n
            for name in set(frames):
                inclusive[name] += n
        # A sample stands for 1/RATE s of the worker's time, spread over the requests it served meanwhile.
        us = 1e6 / (RATE * per_worker_rps * SAMPLE_S)
        print(f"GET /v1/ads, 1,000 active campaigns: {load[0].rps:.0f} req/s with wrk "
              f"({per_worker_rps:.0f} per worker); {total} samples of one worker over {SAMPLE_S} s")  # fmt: skip
        print("  own time (us per request):")
        for name, n in own.most_common(25):
            print(f"    {n * us:7.1f}  {name}")
        print("  with what it calls (us per request):")
        for name, n in inclusive.most_common(40):
            print(f"    {n * us:7.1f}  {name}")
    finally:
        embedded_redis.stop(settings.embedded_redis_socket)
        shutil.rmtree(serving._TMP, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
