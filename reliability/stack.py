"""The app's processes, started with the production commands (as ``scripts/check_production_install.py``
starts them): migrations, gunicorn, a Celery worker and beat, each logging to a file of its own."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from reliability.servers import ROOT, VENV_BIN, wait_until

QUEUES = "events,leads,reports"


@dataclass(frozen=True)
class Exit:
    """A process that exited on its own."""

    name: str
    at: float
    reason: str


def children(pid: int) -> list[int]:
    """The process's direct children (Linux ``/proc``)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as listing:
                found += [int(child) for child in listing.read().split()]
    return found


def rss_kib(pid: int) -> int:
    """Resident memory of one process, in KiB (0 if it is gone)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class AppStack:
    """gunicorn (``WEB_CONCURRENCY`` workers), a Celery worker on every queue and beat, with ``env``.
    Each runs in a session of its own, so a kill reaches the process and the children it forked."""

    def __init__(self, workdir: Path, env: dict[str, str], worker_concurrency: int = 2) -> None:
        self.workdir = workdir
        self.env = env
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.commands = {
            "web": [str(VENV_BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
            "worker": [str(VENV_BIN / "celery"), "-A", "workers", "worker", "-Q", QUEUES,
                       "--concurrency", str(worker_concurrency), "--loglevel", "INFO"],
            "beat": [str(VENV_BIN / "celery"), "-A", "workers", "beat", "--loglevel", "INFO",
                     "--schedule", str(workdir / "celerybeat-schedule")],
        }  # fmt: skip
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # Exits the suite did not cause: a process that died of a fault is a finding.
        self.exits: list[Exit] = []
        self._given_up: set[str] = set()
        self._lock = threading.Lock()  # a supervisor's restart never races a kill

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def migrate(self) -> None:
        with open(self.log_path("migrate"), "ab") as log:
            subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=self.env,
                           check=True, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip

    def start(self, name: str) -> None:
        log = open(self.log_path(name), "ab")  # noqa: SIM115 (the process keeps it)
        self.processes[name] = subprocess.Popen(self.commands[name], cwd=ROOT, env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        log.close()

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)
        wait_until("the web app to be ready", self.ready, timeout_s=120, interval_s=0.3)
        wait_until("both web workers", lambda: len(self.web_workers()) >= int(self.env["WEB_CONCURRENCY"]))

    def ready(self) -> bool:
        with urllib.request.urlopen(self.url + "/readyz", timeout=5) as response:
            return bool(response.status == 200)

    def supervise(self) -> None:
        """Note any process that exited although the suite did not stop it, with the last critical
        line of its log, and start the worker or beat again, as their supervisor (systemd, a
        container runtime) would. The web master is not restarted: it must stay up (it restarts
        its own workers)."""
        with self._lock:
            for name, process in list(self.processes.items()):
                if process.poll() is None or name in self._given_up:
                    continue
                self.exits.append(Exit(name, time.time(), self._last_critical(name)))
                if name == "web":
                    self._given_up.add(name)
                else:
                    self.start(name)

    def _last_critical(self, name: str) -> str:
        lines = [line for line in self.log_path(name).read_text(errors="replace").splitlines()
                 if '"level": "CRITICAL"' in line]  # fmt: skip
        if not lines:
            return "no critical line in its log"
        return str(json.loads(lines[-1]).get("msg", ""))[:200]

    def web_workers(self) -> list[int]:
        return children(self.processes["web"].pid)

    def kill_web_workers(self) -> int:
        """kill -9 every gunicorn worker (its master forks new ones); returns how many were killed."""
        killed = 0
        for pid in self.web_workers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        return killed

    def kill_worker(self, down_s: float) -> None:
        """kill -9 the Celery worker and its pool processes, mid-task, then start it again (as its
        supervisor would)."""
        with self._lock:
            process = self.processes["worker"]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            time.sleep(down_s)
            self.start("worker")

    def memory_kib(self) -> dict[str, int]:
        """Resident memory of the web workers (together, master excluded) and of the Celery worker
        (its main process and pool together)."""
        worker = self.processes["worker"].pid
        return {
            "web": sum(rss_kib(pid) for pid in self.web_workers()),
            "worker": rss_kib(worker) + sum(rss_kib(pid) for pid in children(worker)),
        }

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
