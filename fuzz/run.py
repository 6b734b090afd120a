"""`make fuzz`: Schemathesis against the served ``GET /openapi.json`` of the app under gunicorn, with
every check and every phase (examples, coverage, fuzzing, and the stateful phase, whose links
Schemathesis infers from the document), once for each kind of key.

It starts what it needs: a fresh database (migrated), gunicorn, a catalog made through the public API
(a school with a campus and programs, an active campaign with an ad, a publisher, a school key), then
runs Schemathesis as the admin, the school, the publisher's secret key and the publisher's publishable
key (on the operations that take one, from the publisher's domain). It prints the operations, cases
and failures by check, and exits non-zero on any failure.

Settings (environment): ``FUZZ_MAX_EXAMPLES`` (cases per operation and phase, default 100),
``FUZZ_SEED`` (default: random, printed), ``DATABASE_URL`` and ``REDIS_URL``. Unset, an SQLite file
and an embedded Redis in a temporary folder are used; set, that database is emptied and that Redis
database flushed first, so give the run ones of its own.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, start_gunicorn, stop  # noqa: E402

BIN = Path(sys.executable).parent
ADMIN_KEY = "sk_fuzz_admin_" + secrets.token_hex(12)
PUBLISHER_DOMAIN = "careerguides.example"
# Every rate limit off: the fuzzer sends thousands of requests from one address, and a 429 tests nothing.
NO_RATE_LIMITS = dict.fromkeys(
    ("RATE_LIMIT_ADS_PER_IP", "RATE_LIMIT_CLICKS_PER_IP", "RATE_LIMIT_LEADS_PER_IP", "RATE_LIMIT_ADS_PER_KEY",
     "RATE_LIMIT_LEADS_PER_KEY", "RATE_LIMIT_FAILED_AUTH_PER_IP"), "none")  # fmt: skip


@dataclass(frozen=True)
class Role:
    """One Schemathesis run: the key it sends, how, and on which operations."""

    name: str
    auth: dict[str, dict[str, str]]
    headers: dict[str, str]
    parameters: dict[str, str]
    publishable_only: bool = False


@dataclass
class Outcome:
    role: str
    operations: int
    cases: int
    failures: Counter[str]
    errors: list[str]


def _reset_database(url: str) -> None:
    """An empty database: PostgreSQL's ``public`` schema dropped and made again."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(
        make_url(url.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg")
    )
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _environment(workdir: Path, port: int) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
        "INSTANCE_DIR": str(workdir / "instance"), "SECRET_KEY": secrets.token_urlsafe(32),
        "ENCRYPTION_KEY": Fernet.generate_key().decode(), "ADMIN_API_KEY": ADMIN_KEY, "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "LOG_LEVEL": "WARNING", **NO_RATE_LIMITS,
    }  # fmt: skip
    database_url = env.get("DATABASE_URL", "").strip()
    if database_url.startswith(("postgres://", "postgresql")):
        _reset_database(database_url)
    elif not database_url:
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'fuzz.db'}"
    redis_url = env.get("REDIS_URL", "").strip()
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    else:
        env.pop("REDIS_URL", None)
    return env


def _api(base: str, method: str, path: str, body: dict[str, Any] | None = None, key: str = ADMIN_KEY) -> Any:
    request = urllib.request.Request(
        base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def seed_catalog(base: str) -> dict[str, str]:
    """Real objects for the fuzzer to find, made through the public API; their ids and keys."""
    school = _api(base, "POST", "/v1/schools", {
        "name": "Fuzz University", "website": "https://fuzz.example.edu", "timezone": "America/Phoenix",
        "campuses": [{"name": "Tempe", "postal_code": "85281", "country": "US"}],
        "programs": [{"name": "BS Health Care Administration", "interest": "healthcare-administration",
                      "degree_level": "bachelor", "modality": "online"}],
        "delivery": {"method": "pull"},
    })  # fmt: skip
    campaign = _api(base, "POST", "/v1/campaigns", {
        "school_id": school["id"], "name": "Fuzz campaign", "status": "active",
        "pricing": {"model": "cpl", "bid_cents": 4500}, "program_ids": [school["programs"][0]["id"]],
    })  # fmt: skip
    ad = _api(base, "POST", f"/v1/campaigns/{campaign['id']}/ads", {
        "headline": "A health administration degree online", "landing_url": "https://fuzz.example.edu/health",
    })  # fmt: skip
    publisher = _api(base, "POST", "/v1/publishers", {"name": "Career Guides", "domains": [PUBLISHER_DOMAIN]})
    school_key = _api(base, "POST", f"/v1/schools/{school['id']}/keys")
    # An ad served, its click token and a lead from it: the operations on a lead or a click get real ones.
    served = _first_ad(base, publisher["secret_key"])
    lead = _api(base, "POST", "/v1/leads", {
        "lead_token": served["lead_token"], "first_name": "Ada", "last_name": "Lovelace",
        "email": "ada@example.com", "phone": "+1 602 555 0100", "postal_code": "85281",
        "education_level": "bachelor", "graduation_year": 2010, "birth_year": 1990, "military": False,
        "rn_license": False, "consent": {"granted": True, "text": served["consent_text"]},
    }, key=publisher["secret_key"])  # fmt: skip
    return {
        "school_id": school["id"], "campaign_id": campaign["id"], "ad_id": ad["id"], "publisher_id": publisher["id"],
        "lead_id": lead["id"], "token": served["click_url"].rsplit("/", 1)[1],
        "school_key": school_key["secret_key"], "publisher_key": publisher["secret_key"],
    }  # fmt: skip


def _first_ad(base: str, key: str) -> dict[str, Any]:
    """The campaign's ad, once gunicorn's workers have picked up the new catalog (within a second)."""
    deadline = time.monotonic() + 30
    while not (ads := _api(base, "GET", "/v1/ads?postal_code=85281", key=key)["ads"]):
        if time.monotonic() > deadline:
            raise RuntimeError("the fuzz catalog's campaign was never served")
        time.sleep(0.2)
    return dict(ads[0])


def publishable_key(base: str) -> str:
    """A publisher of its own for the publishable key's run: the admin's run changes the first one's
    domains and keys at random."""
    publisher = _api(base, "POST", "/v1/publishers", {"name": "Career Guides", "domains": [PUBLISHER_DOMAIN]})
    return str(publisher["publishable_key"])


def roles(base: str, catalog: dict[str, str]) -> Iterator[Role]:
    """The runs in turn; the publishable key's is made when its turn comes (see ``publishable_key``)."""
    ids = {f"path.{name}": catalog[name] for name in ("school_id", "campaign_id", "ad_id", "publisher_id", "lead_id",
                                                       "token")}  # fmt: skip
    yield Role("admin", {"secretKey": {"bearer": ADMIN_KEY}}, {}, ids)
    yield Role("school", {"secretKey": {"bearer": catalog["school_key"]}}, {}, ids)
    yield Role("publisher", {"secretKey": {"bearer": catalog["publisher_key"]}}, {}, ids)
    yield Role("publishable", {"publishableKey": {"api_key": publishable_key(base)}},
               {"Origin": f"https://{PUBLISHER_DOMAIN}"}, ids, publishable_only=True)  # fmt: skip


def _toml_value(value: Any) -> str:
    return json.dumps(value)  # a JSON string or number is a valid TOML one


def write_config(role: Role, path: Path, max_examples: int, seed: int) -> None:
    """The shared checks' settings (``fuzz/schemathesis.toml``) with this run's seed, key and ids."""
    lines = [f"seed = {seed}", "workers = 1", "continue-on-failure = true",
             (ROOT / "fuzz" / "schemathesis.toml").read_text(),
             "[generation]", f"max-examples = {max_examples}", "[headers]"]  # fmt: skip
    lines += [f"{_toml_value(k)} = {_toml_value(v)}" for k, v in role.headers.items()]
    lines.append("[parameters]")
    lines += [f"{_toml_value(k)} = {_toml_value(v)}" for k, v in role.parameters.items()]
    for scheme, values in role.auth.items():
        lines.append(f"[auth.openapi.{scheme}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")


def publishable_operations(base: str) -> list[str]:
    """The operations the document says take a publishable key."""
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=30) as response:
        document = json.loads(response.read())
    return [operation["operationId"] for item in document["paths"].values() for operation in item.values()
            if {"publishableKey": []} in operation.get("security", [])]  # fmt: skip


def run_schemathesis(role: Role, base: str, workdir: Path, max_examples: int, seed: int) -> Outcome:
    config = workdir / f"{role.name}.toml"
    write_config(role, config, max_examples, seed)
    report = workdir / f"{role.name}.json"
    command = [str(BIN / "schemathesis"), "--config-file", str(config), "run", f"{base}/openapi.json",
               "--report", "json", "--report-json-path", str(report), "--no-color"]  # fmt: skip
    if role.publishable_only:
        for operation_id in publishable_operations(base):
            command += ["--include-operation-id", operation_id]
    print(f"\n== {role.name} ==", flush=True)
    subprocess.run(command, cwd=workdir, check=False)
    return read_report(role.name, report)


def read_report(role: str, path: Path) -> Outcome:
    """Operations tested, cases generated and failures by check from Schemathesis' JSON report."""
    if not path.exists():
        return Outcome(role, 0, 0, Counter(), ["Schemathesis wrote no report"])
    data = json.loads(path.read_text())
    failures: Counter[str] = Counter()
    for failure in data["failures"]:
        failures[f"{failure['code']} {failure['title']}"] += failure["count"]
    errors = [str(error.get("message", error)) for error in data["errors"]]
    return Outcome(role, data["operations"]["tested"], data["test_cases"]["generated"], failures, errors)


def summary(outcomes: list[Outcome]) -> str:
    lines = [f"{'keys':<12} {'operations':>10} {'cases':>7} {'failures':>8}  by check"]
    for outcome in outcomes:
        checks = ", ".join(f"{name}: {count}" for name, count in sorted(outcome.failures.items())) or "-"
        errors = f"; errors: {len(outcome.errors)}" if outcome.errors else ""
        lines.append(f"{outcome.role:<12} {outcome.operations:>10} {outcome.cases:>7} "
                     f"{sum(outcome.failures.values()):>8}  {checks}{errors}")  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    max_examples = int(os.environ.get("FUZZ_MAX_EXAMPLES", "100"))
    seed = int(os.environ.get("FUZZ_SEED") or random.randrange(2**31))
    workdir = Path(tempfile.mkdtemp(prefix="adserver-fuzz-"))
    port = free_port()
    env = _environment(workdir, port)
    os.environ.update(env)
    print(f"== fuzz: Schemathesis, every check and phase, {max_examples} examples, seed {seed} ==", flush=True)
    subprocess.run([str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    server = start_gunicorn("wsgi:app", port, env=env, workers=2)
    outcomes = []
    try:
        base = f"http://127.0.0.1:{port}"
        catalog = seed_catalog(base)
        for role in roles(base, catalog):
            outcomes.append(run_schemathesis(role, base, workdir, max_examples, seed))
    finally:
        stop(server)
        if not env.get("REDIS_URL"):
            from adserver import embedded_redis

            embedded_redis.stop(workdir / "instance" / "redis.sock")
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n== fuzz summary (seed {seed}, {max_examples} examples) ==\n{summary(outcomes)}")
    failed = any(outcome.failures or outcome.errors for outcome in outcomes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
