"""``make chaos``: the real stack under faults, then what held.

Starts a PostgreSQL and a Redis of its own (the machine's shared servers are never restarted or
paused), a school endpoint that fails or hangs at random, and the app with the production commands
(gunicorn with two workers, a Celery worker, beat). Seeded visitors request ads, click and submit
leads while it injects, in a seeded order, each fault ``CHAOS_ROUNDS`` times: ``kill -9`` of the
Celery worker, a Redis restart, a Redis pause (``DEBUG SLEEP``), a PostgreSQL restart (an immediate
stop, as by a crash) and ``kill -9`` of the gunicorn web workers. Then it lets the system settle and
checks that no accepted lead was lost or made twice, every delivery is final, every repeat to a
school carried the same ``webhook-id``, the report's totals equal the events generated, and no
visitor's personal data is in any process log, in Redis or in Redis's append-only file. It prints a
table of the faults and one of the checks, and exits 1 if a check did not hold.

Settings (environment): ``CHAOS_SEED`` (16), ``CHAOS_ROUNDS`` (2), ``CHAOS_FAULT_GAP_S`` (12 s of
traffic between faults), ``CHAOS_VISITORS`` (4 concurrent visitors), ``CHAOS_KEEP`` (1: keep the
work folder with every log).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import psycopg
import requests
from cryptography.fernet import Fernet

from reliability.checks import Check, checks_table, find_personal_data, redis_contents, settle, table
from reliability.servers import VENV_BIN, FlakySchool, PrivatePostgres, PrivateRedis, free_port
from reliability.stack import AppStack
from reliability.traffic import Traffic

ADMIN_KEY = "sk_chaos_admin_" + secrets.token_hex(12)
SCHOOL_TIMEOUT_S = 2
# (name, body format, max attempts): the attempts differ so that some leads fail for good.
SCHOOLS = (("alder", "json", 3), ("birch", "form", 2), ("cedar", "json", 5))
FAULTS = ("worker-kill", "redis-restart", "redis-pause", "postgres-restart", "web-kill")
DOWN_S = 3.0  # how long a restarted server stays down, and a Redis pause lasts
PAUSES_S = (3.0, 7.0)
SETTLE_S = 240.0


@dataclass
class Catalog:
    publisher_key: str
    school_secrets: dict[str, str]  # school name -> whsec_ secret
    school_attempts: dict[str, int]  # school id -> max attempts
    bids: dict[str, tuple[str, int]] = field(default_factory=dict)  # campaign id -> (model, bid)


@dataclass
class Fault:
    kind: str
    started: float
    ended: float
    detail: str


def api(base: str, method: str, path: str, body: Any = None, key: str = ADMIN_KEY) -> Any:
    response = requests.request(method, base + path, json=body, headers={"Authorization": f"Bearer {key}"},
                                timeout=30)  # fmt: skip
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
    return response.json()


def build_catalog(base: str, school_endpoint: FlakySchool, rng: random.Random) -> Catalog:
    """Three schools posting to the flaky endpoint, each with a CPC and a CPL campaign (no budgets or
    caps, so every refusal comes from a fault), and one publisher."""
    catalog = Catalog(publisher_key="", school_secrets={}, school_attempts={})
    for name, body_format, attempts in SCHOOLS:
        school = api(base, "POST", "/v1/schools", {
            "name": f"{name.title()} Chaos College", "timezone": "America/New_York",
            "campuses": [{"name": "Main", "postal_code": "33620", "country": "US"}],
            "programs": [{"name": f"BS Health Administration ({name})", "interest": "healthcare-administration",
                          "degree_level": "bachelor", "modality": "online"}],
            "delivery": {"method": "http_post", "url": school_endpoint.url(name), "format": body_format,
                         "field_map": {"LeadId": "id", "Email": "email"}, "max_attempts": attempts,
                         "timeout_s": SCHOOL_TIMEOUT_S},
        })  # fmt: skip
        catalog.school_secrets[name] = school["delivery"]["secret"]
        catalog.school_attempts[school["id"]] = attempts
        for model in ("cpc", "cpl"):
            bid = rng.randrange(100, 400) if model == "cpc" else rng.randrange(2000, 5000)
            campaign = api(base, "POST", "/v1/campaigns", {
                "school_id": school["id"], "name": f"{name} {model}", "status": "active",
                "pricing": {"model": model, "bid_cents": bid}, "budget": {"daily_cents": None, "total_cents": None},
                "caps": {"leads_per_day": None, "leads_per_month": None},
                "flight": {"start": "2026-01-01", "end": None,
                           "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "hours": [0, 24]},
                "targeting": {"interests": ["healthcare-administration"], "countries": ["US"]},
                "eligibility": {"min_education": "high_school"},
                "program_ids": [p["id"] for p in school["programs"]],
            })  # fmt: skip
            catalog.bids[campaign["id"]] = (model, bid)
            api(base, "POST", f"/v1/campaigns/{campaign['id']}/ads", {
                "headline": f"Health administration at {name.title()}", "bullets": ["Small classes"],
                "landing_url": f"https://{name}.example/health",
            })  # fmt: skip
    publisher = api(base, "POST", "/v1/publishers", {"name": "Chaos Guides", "domains": ["guides.example"]})
    catalog.publisher_key = publisher["secret_key"]
    return catalog


class Faults:
    """Injects each fault and notes when it ran."""

    def __init__(self, stack: AppStack, redis_server: PrivateRedis, postgres: PrivatePostgres) -> None:
        self.stack = stack
        self.redis = redis_server
        self.postgres = postgres
        self.log: list[Fault] = []

    def inject(self, kind: str) -> None:
        started = time.time()
        detail = ""
        if kind == "worker-kill":
            self.stack.kill_worker(down_s=1.0)
            detail = "worker and pool killed; started again 1 s later"
        elif kind == "redis-restart":
            self.redis.restart(down_s=DOWN_S)
            detail = f"SHUTDOWN, down {DOWN_S:.0f} s, started on its append-only file"
        elif kind == "redis-pause":
            # Alternately shorter and longer than the app's Redis socket timeout (5 s).
            seconds = PAUSES_S[sum(f.kind == kind for f in self.log) % len(PAUSES_S)]
            self.redis.pause(seconds)
            detail = f"DEBUG SLEEP {seconds:.0f}"
        elif kind == "postgres-restart":
            self.postgres.restart(down_s=DOWN_S)
            detail = f"immediate stop, down {DOWN_S:.0f} s, crash recovery"
        elif kind == "web-kill":
            killed = self.stack.kill_web_workers()
            detail = f"{killed} web workers killed; the master forks new ones"
        self.log.append(Fault(kind, started, time.time(), detail))


def watch(stack: AppStack, seconds: float) -> None:
    """Let traffic run for ``seconds``, restarting the worker or beat as their supervisor would."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        stack.supervise()
        time.sleep(0.5)


def fault_rows(faults: list[Fault], traffic: Traffic, started: float) -> list[list[object]]:
    """Each fault, and the requests that failed from its start until the next fault (or the end)."""
    rows: list[list[object]] = []
    for n, fault in enumerate(faults):
        until = faults[n + 1].started if n + 1 < len(faults) else float("inf")
        failed = [f for f in traffic.failures if fault.started <= f.at < until]
        how = Counter(f"{f.what} {f.how}" for f in failed)
        rows.append([f"{fault.started - started:6.1f}", fault.kind, fault.detail, len(failed),
                     ", ".join(f"{k}: {v}" for k, v in sorted(how.items())) or "-"])  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------------
# Reading back what the system holds


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, part) for part in headers["webhook-signature"].split())


def body_lead_id(headers: dict[str, str], body: bytes) -> str | None:
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return parse_qs(body.decode()).get("LeadId", [None])[0]
    value = json.loads(body).get("LeadId")
    return str(value) if value is not None else None


def report_totals(base: str, first_day: str, last_day: str) -> dict[str, int]:
    totals = api(base, "GET", f"/v1/reports?from={first_day}&to={last_day}")["totals"]
    names = ("impressions", "bot_impressions", "clicks", "bot_clicks", "leads", "delivered", "rejected", "failed",
             "returned", "spend_cents")  # fmt: skip
    return {name: int(totals.get(name) or 0) for name in names}


def run_checks(base: str, database_url: str, redis_server: PrivateRedis, stack: AppStack, traffic: Traffic,
               school_endpoint: FlakySchool, catalog: Catalog, first_day: str, logs: list[Path],
               started: float) -> list[Check]:  # fmt: skip
    checks: list[Check] = []

    def check(what: str, expected: object, found: object, held: bool | None = None) -> None:
        checks.append(Check(what, str(expected), str(found), expected == found if held is None else held))

    # Leads: each submission ends in a 201 or a refusal; the 201s are all stored; nothing else is.
    accepted = {call.lead_id: call for call in traffic.leads if call.lead_id}
    unanswered = [call for call in traffic.leads if not call.lead_id and not call.refused]
    refused = Counter(call.refused for call in traffic.leads if call.refused)
    check(
        "every lead submission answered, retried with its Idempotency-Key",
        "0 without an answer",
        f"{len(unanswered)} without an answer" + (f"; refused: {dict(refused)}" if refused else ""),
    )

    # Settle: every delivery final, every event persisted, then the report.
    def pending_deliveries() -> int:
        stack.supervise()
        return int(query(database_url, "SELECT count(*) FROM leads WHERE delivery_state = 'pending'")[0][0])

    client = redis_server.client()
    pending = settle(pending_deliveries, done=lambda n: n == 0, timeout_s=SETTLE_S)
    streams = settle(lambda: (client.xlen("events:impressions"), client.xlen("events:clicks")),
                     done=lambda lengths: lengths == (0, 0), timeout_s=SETTLE_S)  # fmt: skip
    print(f"  settled: deliveries in {pending.waited_s:.0f} s, event streams in {streams.waited_s:.0f} s", flush=True)

    stored = {row[0]: row[1:] for row in query(
        database_url, "SELECT id, status, school_id, attempt_count, price_cents, campaign_id FROM leads")}  # fmt: skip
    lost = [lead_id for lead_id in accepted if lead_id not in stored]
    check("no accepted lead (201) lost", f"{len(accepted)} stored", f"{len(accepted) - len(lost)} stored")
    made_without_201 = [lead_id for lead_id in stored if lead_id not in accepted]
    check("no lead stored that its submitter was not given (no double lead)", 0, len(made_without_201))

    statuses = Counter(row[0] for row in stored.values())
    check(
        "every delivery final (delivered, rejected or failed)",
        "0 pending",
        f"{pending.value} pending; {dict(sorted(statuses.items()))}",
        held=pending.settled and set(statuses) <= {"delivered", "rejected", "failed"},
    )
    early_failures = [lead_id for lead_id, (status, school_id, attempts, *_) in stored.items()
                      if status == "failed" and attempts != catalog.school_attempts[school_id]]  # fmt: skip
    check("a lead failed only after its school's max attempts", 0, len(early_failures))

    # What the schools received.
    receipts = school_endpoint.receipts()
    ids_by_lead: dict[str, set[str]] = defaultdict(set)
    answers_by_lead: dict[str, list[str]] = defaultdict(list)
    unsigned = 0
    for receipt in receipts:
        secret = catalog.school_secrets[receipt.school]
        if not verify_signature(secret, receipt.headers, receipt.body):
            unsigned += 1
        lead_id = body_lead_id(receipt.headers, receipt.body) or "?"
        ids_by_lead[lead_id].add(receipt.headers.get("webhook-id", ""))
        answers_by_lead[lead_id].append(receipt.answer)
    repeats = sum(len(answers) - 1 for answers in answers_by_lead.values())
    mismatched = [lead_id for lead_id, ids in ids_by_lead.items() if ids != {lead_id}]
    check("every repeat to a school carries the same webhook-id (the lead's), signed",
          "0 mismatched, 0 unsigned", f"{len(mismatched)} mismatched, {unsigned} unsigned "
          f"({len(receipts)} requests for {len(ids_by_lead)} leads, {repeats} repeats)",
          held=not mismatched and not unsigned)  # fmt: skip
    unreceived = [
        lead_id
        for lead_id, (status, *_) in stored.items()
        if status == "delivered" and not {"200", "201", "204"} & set(answers_by_lead.get(lead_id, []))
    ]
    check("every delivered lead was answered 2xx by its school", 0, len(unreceived))
    stray = [lead_id for lead_id in answers_by_lead if lead_id not in stored]
    check("the schools received only stored leads", 0, len(stray))

    # Events: impressions and clicks the API answered, and what requests cut off mid-way recorded.
    answered_impressions = {i for call in traffic.ads for i in call.impressions}
    in_doubt = {call.request_id for call in traffic.ads if call.outcome.kind == "cut"
                or (call.outcome.kind == "answered" and call.outcome.status != 200)}  # fmt: skip
    impressions = query(database_url, "SELECT id, request_id, is_bot FROM impressions")
    stored_impressions = {row[0] for row in impressions}
    from_doubt = [row for row in impressions if row[0] not in answered_impressions and row[1] in in_doubt]
    from_nowhere = [row for row in impressions if row[0] not in answered_impressions and row[1] not in in_doubt]
    check(
        "every impression answered is stored", len(answered_impressions), len(answered_impressions & stored_impressions)
    )
    check("no impression stored but never served (beyond requests cut off mid-way)", 0, len(from_nowhere))
    answered_clicks = [c for c in traffic.clicks if c.outcome.kind == "answered" and c.outcome.status == 302]
    clicks = query(database_url, "SELECT impression_id, counted, spend_cents FROM clicks WHERE counted")
    check(
        "every click answered (302) counted once",
        len(answered_clicks),
        len(clicks),
        held=sorted(c.impression_id for c in answered_clicks) == sorted(row[0] for row in clicks),
    )

    # The report, once it stops changing, against what was generated.
    delivered = [row for row in stored.values() if row[0] == "delivered"]
    expected = {
        "impressions": len(answered_impressions) + len(from_doubt), "bot_impressions": 0,
        "clicks": len(answered_clicks), "bot_clicks": 0, "leads": len(accepted),
        "delivered": statuses["delivered"], "rejected": statuses["rejected"], "failed": statuses["failed"],
        "returned": 0,
        "spend_cents": sum(catalog.bids[c.campaign_id][1] for c in answered_clicks
                           if catalog.bids[c.campaign_id][0] == "cpc") + sum(row[3] for row in delivered),
    }  # fmt: skip
    last_day = datetime.now(UTC).date().isoformat()
    report = settle(lambda: report_totals(base, first_day, last_day), done=lambda totals: totals == expected,
                    timeout_s=90, interval_s=3)  # fmt: skip
    for name, value in expected.items():
        note = f" ({len(from_doubt)} of them from {len(in_doubt)} requests cut off)" if name == "impressions" else ""
        check(
            f"report {name} equal to the events generated",
            f"{value}{note}",
            report.value[name],
            held=report.value[name] == value,
        )

    # Personal data: every process log, the live Redis and its append-only file.
    people = [call.person for call in traffic.leads]
    found = find_personal_data(people, [(path.name, path.read_bytes()) for path in logs if path.exists()])
    check(
        f"no personal data of the {len(people)} visitors who submitted leads in any process log",
        0,
        len(found) if not found else f"{len(found)}: " + ", ".join(f"{f.kind} in {f.source}" for f in found[:5]),
    )
    in_redis = find_personal_data(people, redis_contents(client))
    aof = [(path.name, path.read_bytes()) for path in redis_server.persistence_files()]
    in_redis += find_personal_data(people, aof)
    check("no personal data in Redis (every key and value, and the append-only file)", 0,
          len(in_redis) if not in_redis else f"{len(in_redis)}: " + ", ".join(f"{f.kind} in {f.source}"
                                                                          for f in in_redis[:5]))  # fmt: skip

    errors = Counter(f.what for f in traffic.failures if f.how == "500")
    check("no 500 answer (a fault is a 503 or a refused connection)", 0, sum(errors.values()))
    stack.supervise()
    exits = "; ".join(f"{e.name} at {e.at - started:.0f} s ({e.reason})" for e in stack.exits) or "none"
    check(
        "the web master stayed up (worker and beat are restarted by their supervisor if they exit)",
        "web master up",
        f"exits: {exits}",
        held=not any(e.name == "web" for e in stack.exits),
    )
    return checks


def main() -> int:
    seed = int(os.environ.get("CHAOS_SEED", "16"))
    rounds = int(os.environ.get("CHAOS_ROUNDS", "2"))
    gap_s = float(os.environ.get("CHAOS_FAULT_GAP_S", "12"))
    visitors = int(os.environ.get("CHAOS_VISITORS", "4"))
    keep = os.environ.get("CHAOS_KEEP", "") == "1"
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="adserver-chaos-"))
    workdir.chmod(0o711)  # the private PostgreSQL runs as another account and needs to reach its folder
    print(f"== chaos run, seed {seed}, {rounds} round(s) of {len(FAULTS)} faults, work folder {workdir} ==",
          flush=True)  # fmt: skip

    postgres = redis_server = school_endpoint = stack = None
    ok = False
    try:
        postgres = PrivatePostgres(workdir / "postgres")
        redis_server = PrivateRedis(workdir / "redis")
        school_endpoint = FlakySchool(seed=seed, hang_s=SCHOOL_TIMEOUT_S + 1.5)
        print(f"  private PostgreSQL on port {postgres.port} (as {postgres.account or 'this user'}), "
              f"private Redis on port {redis_server.port} (AOF everysec)", flush=True)  # fmt: skip
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
            "DATABASE_URL": postgres.url, "REDIS_URL": redis_server.url,
            "SECRET_KEY": secrets.token_urlsafe(32), "ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "ADMIN_API_KEY": ADMIN_KEY, "PORT": str(port), "WEB_CONCURRENCY": "2",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "DELIVERY_URL_ALLOWLIST": "127.0.0.1",
            "INSTANCE_DIR": str(workdir / "instance"), "LOG_LEVEL": "INFO",
            # Retries and reclaims within the run's few minutes.
            "DELIVERY_RETRY_BASE_S": "0.5", "EVENT_RECLAIM_IDLE_S": "10",
            # Every visitor comes from this machine: limits that a few visitors never meet.
            "RATE_LIMIT_ADS_PER_KEY": "100000/minute", "RATE_LIMIT_CLICKS_PER_IP": "100000/minute",
            "RATE_LIMIT_LEADS_PER_KEY": "100000/minute",
        }  # fmt: skip
        stack = AppStack(workdir, env)
        stack.migrate()
        stack.start_all()
        base = stack.url
        catalog = build_catalog(base, school_endpoint, rng)
        first_day = datetime.now(UTC).date().isoformat()
        # Asked through the explanation, which counts no impression.
        explain = "/v1/ads/explain?postal_code=33620&interest=healthcare-administration"
        eligible = lambda: sum(c["eligible"] for c in api(base, "GET", explain)["campaigns"])  # noqa: E731
        settle(eligible, done=lambda n: n == len(catalog.bids), timeout_s=30, interval_s=0.5)
        print(f"  stack up at {base}: gunicorn (2 workers), Celery worker, beat; {len(SCHOOLS)} schools, "
              f"{len(catalog.bids)} campaigns", flush=True)  # fmt: skip

        traffic = Traffic(base, catalog.publisher_key, seed, visitors, click_rate=0.12, lead_rate=0.06, pause_s=0.05)
        faults = Faults(stack, redis_server, postgres)
        schedule = [kind for _ in range(rounds) for kind in FAULTS]
        rng.shuffle(schedule)
        started = time.time()
        traffic.start()
        watch(stack, gap_s)
        for kind in schedule:
            print(f"  {time.time() - started:6.1f} s  {kind}", flush=True)
            faults.inject(kind)
            watch(stack, gap_s)
        traffic.stop()
        print(f"  traffic stopped after {time.time() - started:.0f} s: {len(traffic.ads)} ad requests, "
              f"{len(traffic.clicks)} clicks, {len(traffic.leads)} lead submissions; settling", flush=True)  # fmt: skip

        logs = [stack.log_path(name) for name in ("migrate", "web", "worker", "beat")]
        logs += [redis_server.log_path, postgres.log_path]
        checks = run_checks(
            base, postgres.url, redis_server, stack, traffic, school_endpoint, catalog, first_day, logs, started
        )
        print("\nFaults injected (s: seconds into the run; failed: requests that failed from the fault to the next)")
        print(table(("s", "fault", "how", "failed", "failures"), fault_rows(faults.log, traffic, started)))
        print("\nWhat held")
        print(checks_table(checks))
        ok = all(c.held for c in checks)
    except Exception as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        raise
    finally:
        if stack is not None:
            stack.stop()
        if school_endpoint is not None:
            school_endpoint.close()
        if redis_server is not None:
            redis_server.stop()
        if postgres is not None:
            postgres.stop()
        if keep or not ok:
            print(f"  logs kept in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("== chaos run: " + ("every check held ==" if ok else "a check did NOT hold =="), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
