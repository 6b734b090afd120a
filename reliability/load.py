"""``make load``: Locust, headless, against gunicorn serving the app with the realistic mix (about
90% ad requests, 8% clicks on served ads, 2% lead submissions), a Celery worker and beat running.

It runs on a database and a Redis of its own: a temporary SQLite file and the embedded Redis, or,
when ``DATABASE_URL`` names a PostgreSQL server, a database created beside it for the run and
dropped afterwards (the embedded Redis all the same: the shared Redis is never loaded). It seeds a
catalog of ``LOAD_SCHOOLS`` schools with five campaigns each, through the API; a quarter of the
schools take their leads by ``http_post`` at a local endpoint that answers 200, the rest pull them.
The rate limits are set to values a load from one address and one key never meets.

It prints throughput, p50/p95/p99 per endpoint, errors, and the resident memory of the web workers
and of the Celery worker at the start (once warmed up) and at the end.

Settings (environment): ``LOAD_DURATION`` (``3m``), ``LOAD_USERS`` (8 concurrent publishers'
servers, no think time), ``LOAD_SCHOOLS`` (200), ``WEB_CONCURRENCY`` (2), ``LOAD_SEED`` (16).
"""

from __future__ import annotations

import csv
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from reliability.checks import table
from reliability.servers import ROOT, VENV_BIN, FlakySchool, free_port
from reliability.stack import AppStack

ADMIN_KEY = "sk_load_admin_" + secrets.token_hex(12)
INTERESTS = ("healthcare-administration", "medical-office-management", "health-information-technology",
             "medical-billing-coding", "registered-nursing", "business-administration", "accounting",
             "criminal-justice", "psychology", "information-technology")  # fmt: skip
# Campus and visitor ZIPs across the country (state targeting and radius both find matches).
POSTAL_CODES = ("33620", "85004", "10001", "60601", "94103", "30303", "98101", "02108", "75201", "80202",
                "48201", "55401", "63101", "19103", "97201", "84101", "37203", "70112", "28202", "64105")  # fmt: skip
DEGREES = ("certificate", "associate", "bachelor", "master")
MODALITIES = ("online", "campus", "hybrid")
WARM_UP_S = 20.0
MEMORY_EVERY_S = 10.0


def _database(workdir: Path) -> tuple[str, str | None]:
    """The run's database URL, and the server URL to drop it with afterwards (PostgreSQL only)."""
    configured = os.environ.get("DATABASE_URL", "").strip()
    if not configured.startswith(("postgres://", "postgresql")):
        return f"sqlite:///{workdir / 'load.db'}", None
    url = make_url(configured.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg")
    name = f"adserver_load_{os.getpid()}"
    server = url.set(database="postgres").render_as_string(hide_password=False)
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False), server


def _drop(database_url: str, server: str) -> None:
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(database_url).database}" WITH (FORCE)'))
    engine.dispose()


def seed_catalog(schools: int, school_url: str, rng: random.Random) -> str:
    """Schools, campaigns and ads through the API (in process), and a publisher; returns its secret key."""
    from adserver import create_app

    app = create_app()
    client = app.test_client()
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def post(path: str, body: dict[str, Any]) -> Any:
        response = client.post(path, json=body, headers=admin)
        if response.status_code != 201:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.get_data(as_text=True)}")
        return response.get_json()

    for n in range(schools):
        pushes = n % 4 == 0
        delivery = ({"method": "http_post", "url": school_url, "format": "json", "max_attempts": 3, "timeout_s": 5}
                    if pushes else {"method": "pull"})  # fmt: skip
        school = post("/v1/schools", {
            "name": f"Load School {n}", "timezone": "America/New_York",
            "campuses": [{"name": "Main", "postal_code": rng.choice(POSTAL_CODES), "country": "US"}],
            "programs": [{"name": f"{interest} program {n}", "interest": interest,
                          "degree_level": rng.choice(DEGREES), "modality": rng.choice(MODALITIES)}
                         for interest in rng.sample(INTERESTS, 3)],
            "delivery": delivery,
        })  # fmt: skip
        for k in range(5):
            programs = rng.sample(school["programs"], rng.choice((1, 2, 3)))
            national, radius = k % 3 == 0, k % 3 == 2
            campaign = post("/v1/campaigns", {
                "school_id": school["id"], "name": f"Load {n}-{k}", "status": "active",
                "pricing": {"model": rng.choice(("cpc", "cpl")), "bid_cents": rng.randrange(100, 6000)},
                "budget": {"daily_cents": rng.choice((None, 10_000_000)), "total_cents": None},
                "caps": {"leads_per_day": None, "leads_per_month": None},
                "flight": {"start": "2026-01-01", "end": None,
                           "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "hours": [0, 24]},
                "targeting": {"interests": sorted({p["interest"] for p in programs}), "countries": ["US"],
                              "radius_miles": rng.choice((100, 250, 500)) if radius else None,
                              "regions": [] if national or radius else [school["campuses"][0]["region"]]},
                "eligibility": {"min_education": "high_school"},
                "program_ids": [p["id"] for p in programs],
            })  # fmt: skip
            post(f"/v1/campaigns/{campaign['id']}/ads", {
                "headline": f"Programs at Load School {n}", "bullets": ["Small classes", "Financial aid"],
                "tags": ["Online Courses"], "landing_url": f"https://school{n}.example/programs",
            })  # fmt: skip
    return str(post("/v1/publishers", {"name": "Load Guides", "domains": ["guides.example"]})["secret_key"])


class MemorySampler:
    """Samples the stack's resident memory every ``MEMORY_EVERY_S`` while the load runs."""

    def __init__(self, stack: AppStack) -> None:
        self.stack = stack
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.samples.append((time.monotonic() - self._started, self.stack.memory_kib()))
            if self._stop.wait(MEMORY_EVERY_S):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.monotonic() - self._started, self.stack.memory_kib()))


def _ms(value: str) -> str:
    return "-" if value in ("", "N/A") else f"{float(value):,.0f}"


def stats_rows(stats_csv: Path) -> list[list[object]]:
    """Locust's per-endpoint statistics (its ``_stats.csv``), the aggregate last."""
    rows: list[list[object]] = []
    with open(stats_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            name = row["Name"] if row["Type"] else "all"
            count, failures = int(row["Request Count"]), int(row["Failure Count"])
            rows.append([f"{row['Type']} {name}".strip(), f"{count:,}", f"{float(row['Requests/s']):,.1f}",
                         _ms(row["50%"]), _ms(row["95%"]), _ms(row["99%"]),
                         f"{failures:,} ({failures / count:.2%})" if count else "0"])  # fmt: skip
    return rows


def memory_rows(samples: list[tuple[float, dict[str, int]]]) -> list[list[object]]:
    warm = next((values for at, values in samples if at >= WARM_UP_S), samples[0][1])
    idle, end = samples[0][1], samples[-1][1]
    rows: list[list[object]] = []
    for name, what in (("web", "gunicorn workers (2, together)"), ("worker", "Celery worker and its pool")):
        growth = (end[name] - warm[name]) / warm[name] if warm[name] else 0.0
        rows.append([what, f"{idle[name] / 1024:,.1f}", f"{warm[name] / 1024:,.1f}", f"{end[name] / 1024:,.1f}",
                     f"{growth:+.1%}"])  # fmt: skip
    return rows


def main() -> int:
    duration = os.environ.get("LOAD_DURATION", "3m")
    users = int(os.environ.get("LOAD_USERS", "8"))
    schools = int(os.environ.get("LOAD_SCHOOLS", "200"))
    rng = random.Random(int(os.environ.get("LOAD_SEED", "16")))
    workdir = Path(tempfile.mkdtemp(prefix="adserver-load-"))
    database_url, server = _database(workdir)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "REDIS_URL")},
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        "DATABASE_URL": database_url, "INSTANCE_DIR": str(workdir / "instance"),
        "SECRET_KEY": secrets.token_urlsafe(32), "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ADMIN_API_KEY": ADMIN_KEY, "PORT": str(port), "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "DELIVERY_URL_ALLOWLIST": "127.0.0.1", "LOG_LEVEL": "WARNING",
        # One publisher's server, from one address: limits it never meets (per key, and per IP for clicks).
        "RATE_LIMIT_ADS_PER_KEY": "none", "RATE_LIMIT_LEADS_PER_KEY": "1000000/minute",
        "RATE_LIMIT_CLICKS_PER_IP": "1000000/minute",
    }  # fmt: skip
    os.environ.update(env)
    print(f"== load test: {users} users for {duration}, {schools} schools x 5 campaigns, "
          f"database {make_url(database_url).get_backend_name()}, embedded Redis ==", flush=True)  # fmt: skip

    school_endpoint = FlakySchool(seed=0, hang_s=0, answers=(("200", 1),))
    stack = AppStack(workdir, env)
    ok = False
    try:
        stack.migrate()
        started = time.monotonic()
        publisher_key = seed_catalog(schools, school_endpoint.url("load"), rng)
        print(f"  catalog seeded through the API in {time.monotonic() - started:.0f} s", flush=True)
        stack.start_all()
        sampler = MemorySampler(stack)
        sampler.start()
        prefix = workdir / "locust"
        locust_env = {**env, "LOAD_PUBLISHER_KEY": publisher_key, "LOAD_POSTAL_CODES": ",".join(POSTAL_CODES),
                      "LOAD_INTERESTS": ",".join(INTERESTS)}  # fmt: skip
        locust_log = open(workdir / "locust.log", "wb")  # noqa: SIM115 (closed below)
        subprocess.run(
            [str(VENV_BIN / "locust"), "-f", str(ROOT / "reliability" / "locustfile.py"), "--headless",
             "--users", str(users), "--spawn-rate", str(users), "--run-time", duration, "--host", stack.url,
             "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "10"],
            cwd=ROOT, env=locust_env, check=False, stdout=locust_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        locust_log.close()
        sampler.stop()
        stack.supervise()
        if not Path(f"{prefix}_stats.csv").exists():
            raise RuntimeError("Locust wrote no statistics:\n" + (workdir / "locust.log").read_text()[-3000:])
        print(f"\nThroughput and latency (ms) per endpoint, {users} users, {duration}")
        print(table(("endpoint", "requests", "req/s", "p50", "p95", "p99", "errors"),
                    stats_rows(Path(f"{prefix}_stats.csv"))))  # fmt: skip
        failures = Path(f"{prefix}_failures.csv").read_text().strip().splitlines()[1:]
        if failures:
            print("\nErrors (method, endpoint, error, count)\n" + "\n".join(failures[:10]))
        print("\nResident memory (MiB): idle before the load, after warm-up, at the end")
        print(table(("process", "idle", f"at {WARM_UP_S:.0f} s", "end", "growth"), memory_rows(sampler.samples)))
        if stack.exits:
            print("processes that exited during the load: " + ", ".join(e.name for e in stack.exits))
        ok = not stack.exits
    finally:
        stack.stop()
        school_endpoint.close()
        from adserver import embedded_redis

        embedded_redis.stop(workdir / "instance" / "redis.sock")
        if server is not None:
            _drop(database_url, server)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
