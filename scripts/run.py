"""`make run`: migrate, seed the demo catalog, then run web, worker and beat until Ctrl-C.

On the embedded defaults it also starts the embedded Redis and stops it on exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adserver import embedded_redis  # noqa: E402
from config.settings import ConfigError, load_settings  # noqa: E402

BIN = Path(sys.executable).parent


def flask(*args: str) -> str:
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    started_redis = settings.embedded_redis and embedded_redis.ensure_running(settings.embedded_redis_socket)

    print("applying migrations ...", flush=True)
    flask("db", "upgrade")
    print(flask("seed-demo"), flush=True)
    print(flask("seed-demo-traffic"), flush=True)
    admin_key = settings.admin_api_key or flask("create-admin-key")

    port = os.environ.get("PORT", "8000")
    instance = settings.instance_dir
    commands = {
        "web": [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
        "worker": [str(BIN / "celery"), "-A", "workers", "worker", "-Q", "events,leads,reports",
                   "--concurrency", os.environ.get("WORKER_CONCURRENCY", "2"), "--loglevel", "INFO"],
        "beat": [str(BIN / "celery"), "-A", "workers", "beat", "--loglevel", "INFO",
                 "--schedule", str(instance / "celerybeat-schedule")],
    }  # fmt: skip
    processes = {name: subprocess.Popen(cmd, cwd=ROOT) for name, cmd in commands.items()}

    print(
        f"\nadserver is running at http://localhost:{port}\n"
        f"  demo article with the widget: http://localhost:{port}/demo/medical-office-manager\n"
        f"  API reference: http://localhost:{port}/docs\n"
        f"  admin key: {admin_key}\n"
        f"  try: curl -H 'Authorization: Bearer {admin_key}' http://localhost:{port}/v1/schools\n"
        f"  dashboard: http://localhost:{port}/dashboard (sign in with the admin key)\n"
        "  Ctrl-C stops web, worker and beat.\n",
        flush=True,
    )

    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"{name} exited with status {process.returncode}; stopping", file=sys.stderr)
                exit_code = 1
                stopping = True
        time.sleep(0.2)

    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
    if started_redis:
        embedded_redis.stop(settings.embedded_redis_socket)
    print("stopped.")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
