"""The production install, end to end: what an operator's image does, with nothing from the dev tools.

1. a clean virtualenv from ``requirements.txt`` alone, then ``pip check``;
2. migrations, the web app (gunicorn), a worker and beat, started with the production commands
   against PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``; a database of its own is created
   and dropped, and one Redis database number is emptied before and after);
3. a school, campaign, ad and publisher created through the API, an ad requested, a lead submitted,
   and the lead received by a local school endpoint that checks its Standard Webhooks signature;
4. everything stopped.

Runs with the standard library only (``python3 scripts/check_production_install.py``); exit 0 when
the lead arrived signed and the API reports it delivered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "sk_install_check_" + os.urandom(12).hex()
DEADLINE_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SchoolEndpoint(ThreadingHTTPServer):
    """A school's CRM: keeps each POST with its headers."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/leads"


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, part) for part in headers["webhook-signature"].split())


def call(base: str, method: str, path: str, body: Any = None, key: str = ADMIN_KEY) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {path}: {exc.code} {exc.read().decode()}") from None


# The started processes: a wait ends early, with the reason, when one of them has exited.
PROCESSES: dict[str, subprocess.Popen[bytes]] = {}


def wait_until(what: str, check: Any, timeout_s: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name, process in PROCESSES.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with status {process.returncode} while waiting for {what}")
        try:
            found = check()
        except (OSError, RuntimeError):
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def run_scenario(base: str, school_endpoint: SchoolEndpoint) -> str:
    school = call(base, "POST", "/v1/schools", {
        "name": "Install Check College", "timezone": "America/Phoenix",
        "campuses": [{"name": "Tempe", "postal_code": "85281", "country": "US"}],
        "programs": [{"name": "BS Health Care Administration", "interest": "healthcare-administration",
                      "degree_level": "bachelor", "modality": "online"}],
        "delivery": {"method": "http_post", "url": school_endpoint.url, "format": "json",
                     "field_map": {"Email": "email"}, "max_attempts": 3, "timeout_s": 5},
    })  # fmt: skip
    campaign = call(base, "POST", "/v1/campaigns", {
        "school_id": school["id"], "name": "Install check", "status": "active",
        "pricing": {"model": "cpl", "bid_cents": 4500}, "budget": {"daily_cents": None, "total_cents": None},
        "caps": {"leads_per_day": None, "leads_per_month": None},
        "flight": {"start": "2026-01-01", "end": None, "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                   "hours": [0, 24]},
        "targeting": {"interests": ["healthcare-administration"], "countries": ["US"]},
        "eligibility": {"min_education": "high_school"}, "program_ids": [p["id"] for p in school["programs"]],
    })  # fmt: skip
    call(base, "POST", f"/v1/campaigns/{campaign['id']}/ads", {
        "headline": "Health care administration, online", "bullets": ["Small classes"],
        "landing_url": "https://install-check.example/health",
    })  # fmt: skip
    publisher = call(base, "POST", "/v1/publishers", {"name": "Install Check Guides", "domains": ["guides.example"]})
    print("  catalog created through the API", flush=True)

    ads = wait_until("the new campaign to be served", lambda: call(
        base, "GET", "/v1/ads?postal_code=85004&interest=healthcare-administration",
        key=publisher["secret_key"])["ads"])  # fmt: skip
    lead = call(base, "POST", "/v1/leads", {
        "lead_token": ads[0]["lead_token"], "first_name": "Ada", "last_name": "Lovelace",
        "email": "ada.install-check@example.com", "phone": "+1 602 555 0143", "postal_code": "85004",
        "education_level": "bachelor", "graduation_year": 2010, "birth_year": 1990,
        "consent": {"granted": True, "text": ads[0]["consent_text"], "page_url": "https://guides.example/article"},
    }, key=publisher["secret_key"])  # fmt: skip
    print(f"  lead {lead['id']} accepted", flush=True)

    headers, body = wait_until("the school endpoint to receive the lead", lambda: school_endpoint.received)[0]
    if headers.get("webhook-id") != lead["id"]:
        raise RuntimeError(f"the school received webhook-id {headers.get('webhook-id')!r}, not the lead's id")
    if not verify_signature(school["delivery"]["secret"], headers, body):
        raise RuntimeError("the school received a lead whose signature does not verify")
    if json.loads(body).get("Email") != "ada.install-check@example.com":
        raise RuntimeError("the school received a body without its mapped Email field")
    print("  the school endpoint received the lead, signed", flush=True)
    delivered = lambda: call(base, "GET", f"/v1/leads/{lead['id']}")["status"] == "delivered"  # noqa: E731
    wait_until("the lead to read delivered", delivered)
    return str(lead["id"])


def main() -> int:
    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = urlunsplit(urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))._replace(
        path="/" + os.environ.get("INSTALL_CHECK_REDIS_DB", "12")))  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="adserver-install-check-"))
    venv = workdir / "venv"
    bin_dir = venv / "bin"
    python = str(bin_dir / "python")
    print(f"== production install check in {workdir} ==", flush=True)

    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                    str(ROOT / "requirements.txt")], check=True)  # fmt: skip
    subprocess.run([python, "-m", "pip", "check"], check=True)
    print("  requirements.txt installed alone; pip check passes", flush=True)

    database = f"adserver_install_check_{os.getpid()}"
    server_url = with_database(database_url, "postgres")
    manage_db = "import sys, psycopg; c = psycopg.connect(sys.argv[1], autocommit=True); c.execute(sys.argv[2])"
    subprocess.run([python, "-c", manage_db, server_url, f'CREATE DATABASE "{database}"'], check=True)
    flush_redis = "import sys, redis; redis.Redis.from_url(sys.argv[1]).flushdb()"
    subprocess.run([python, "-c", flush_redis, redis_url], check=True)

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "DATABASE_URL": with_database(database_url, database),
        "REDIS_URL": redis_url,
        "SECRET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "ADMIN_API_KEY": ADMIN_KEY,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DELIVERY_URL_ALLOWLIST": "127.0.0.1",
        "INSTANCE_DIR": str(workdir / "instance"),
    }
    logs = {name: open(workdir / f"{name}.log", "w+b") for name in ("web", "worker", "beat")}  # noqa: SIM115
    processes = PROCESSES
    school_endpoint = SchoolEndpoint()
    ok = False
    try:
        subprocess.run([str(bin_dir / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                       capture_output=True)  # fmt: skip
        print("  migrations applied", flush=True)
        commands = {
            "web": [str(bin_dir / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
            "worker": [str(bin_dir / "celery"), "-A", "workers", "worker", "-Q", "events,leads,reports",
                       "--concurrency", "2", "--loglevel", "INFO"],
            "beat": [str(bin_dir / "celery"), "-A", "workers", "beat", "--loglevel", "INFO",
                     "--schedule", str(workdir / "celerybeat-schedule")],
        }  # fmt: skip
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command, cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        ready = lambda: urllib.request.urlopen(base + "/readyz", timeout=2).status == 200  # noqa: E731
        wait_until("the web app to be ready", ready)
        print("  web, worker and beat started with the production commands", flush=True)
        run_scenario(base, school_endpoint)
        ok = True
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr, flush=True)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                print(f"  {name} did not stop on SIGTERM; killed", file=sys.stderr)
        school_endpoint.shutdown()
        if not ok:
            for name, log in logs.items():
                log.seek(0)
                print(f"---- {name} log (last lines) ----\n" + b"\n".join(log.read().splitlines()[-40:]).decode(
                    errors="replace"), file=sys.stderr)  # fmt: skip
        for log in logs.values():
            log.close()
        subprocess.run([python, "-c", manage_db, server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'],
                       check=False)  # fmt: skip
        subprocess.run([python, "-c", flush_redis, redis_url], check=False)
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    print("== production install check: " + ("passed ==" if ok else "FAILED =="), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
