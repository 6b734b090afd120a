"""Ad serving: decision latency in process, and GET /v1/ads through gunicorn beside a trivial endpoint.

Builds its own catalog in a temporary SQLite file and an embedded Redis, so it
runs from a fresh clone. Figures, not pass/fail:

(a) ``decide_ads`` latency (index lookup, rules, the Redis round trip, tokens)
    with 100, 1,000 and 10,000 active campaigns;
(b) requests per second of ``GET /v1/ads`` (1,000 active campaigns) and of a
    trivial Flask JSON endpoint, both on gunicorn with the same settings, in three alternating
    rounds, and the median of the rounds' ratios;
    between them, the floor (``bench/floor_apps.py``: the one Redis round trip and an answer
    of the same size, nothing else) and ``GET /v1/ads`` with no active campaign (the API
    around the decision). The load generator is wrk when installed (see ``bench/common.py``).

Requests look like the widget's: a US ZIP drawn from all ZIP codes, an interest
always, a degree level half the time, a visitor id, limit 5.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_TMP = Path(tempfile.mkdtemp(prefix="adserver-bench-"))
ENV = {
    "INSTANCE_DIR": str(_TMP / "instance"),
    "DATABASE_URL": f"sqlite:///{_TMP / 'bench.db'}",
    "SECRET_KEY": "bench-secret-key-0123456789abcdef",
    "ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "LOG_LEVEL": "WARNING",
    "PUBLIC_BASE_URL": "http://localhost:8000",
}
os.environ.update(ENV)
os.environ.pop("REDIS_URL", None)  # the embedded Redis under INSTANCE_DIR

from bench.common import Phase, load_generator, measure_in_rounds, percentile, ratio  # noqa: E402

# /v1/ads and its baselines are measured in alternating rounds and compared round by round.
ROUNDS = 3

SIZES = (100, 1_000, 10_000)
SCHOOLS = 2_000
INTERESTS = (
    "healthcare-administration", "medical-office-management", "health-information-technology",
    "medical-billing-coding", "registered-nursing", "business-administration", "accounting",
    "criminal-justice", "psychology", "information-technology", "cybersecurity", "early-childhood-education",
    "paralegal", "human-services", "computer-science",
)  # fmt: skip
DEGREES = ("certificate", "associate", "bachelor", "master", "doctorate")
MODALITIES = ("online", "campus", "hybrid")
DECISIONS = 3_000


def _zip_codes() -> list[tuple[str, str, float, float]]:
    from adserver.geo import _get_tables

    military = ("AA", "AE", "AP")
    return [(z, loc.region, loc.latitude, loc.longitude) for z, loc in _get_tables().zips.items()
            if loc.latitude is not None and loc.longitude is not None and loc.region not in military]  # fmt: skip


def build_catalog(rng: random.Random) -> tuple[list[str], str]:
    """SCHOOLS schools with a campus and three programs each, five campaigns per school
    (a third national, a third by state, a third by radius), one ad per campaign."""
    from sqlalchemy import insert

    from adserver.auth import create_api_key
    from adserver.extensions import db
    from adserver.ids import new_id
    from adserver.models import Ad, Campaign, Campus, Program, Publisher, School, campaign_programs

    zips = _zip_codes()
    known = set(INTERESTS)
    assert len(known) == len(INTERESTS)
    schools, campuses, programs, campaigns, links, ads = [], [], [], [], [], []
    for n in range(SCHOOLS):
        school_id = new_id("sch")
        code, region, lat, lon = rng.choice(zips)
        schools.append({"id": school_id, "name": f"Bench School {n}", "website": None, "logo_url": None,
                        "timezone": "America/New_York", "consent_text": "I agree to be contacted.",
                        "delivery_method": "pull", "delivery_url": None, "delivery_format": "json",
                        "delivery_field_map": {}, "delivery_max_attempts": 8, "delivery_timeout_s": 10,
                        "delivery_secret_encrypted": "x"})  # fmt: skip
        campuses.append({"id": new_id("cmp"), "school_id": school_id, "name": "Main", "postal_code": code,
                         "country": "US", "region": region, "latitude": lat, "longitude": lon})  # fmt: skip
        school_programs = []
        for interest in rng.sample(INTERESTS, 3):
            program_id = new_id("prg")
            school_programs.append((program_id, interest))
            programs.append({"id": program_id, "school_id": school_id, "name": f"{interest} program",
                             "interest": interest, "degree_level": rng.choice(DEGREES),
                             "modality": rng.choice(MODALITIES)})  # fmt: skip
        for k in range(5):
            campaign_id = new_id("cpn")
            kind = (n + k) % 3
            chosen = rng.sample(school_programs, rng.choice((1, 2, 3)))
            campaigns.append({
                "id": campaign_id, "school_id": school_id, "name": f"Campaign {n}-{k}", "status": "paused",
                "pricing_model": rng.choice(("cpc", "cpl")), "bid_cents": rng.randrange(100, 6000),
                "daily_budget_cents": rng.choice((None, 10_000_000)), "total_budget_cents": None,
                "leads_per_day": rng.choice((None, 1000)), "leads_per_month": None,
                "flight_start": None, "flight_end": None,
                "flight_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "flight_hour_start": 0, "flight_hour_end": 24,
                "targeting": {"interests": [], "degree_levels": [], "modalities": [], "countries": ["US"],
                              "regions": [region, rng.choice(zips)[1]] if kind == 1 else [],
                              "exclude_regions": [], "postal_codes": [],
                              "radius_miles": rng.choice((50, 100, 150)) if kind == 2 else None},
                "eligibility": {}, "publishers_allow": [], "publishers_deny": [],
                "impressions_per_day": rng.choice((None, None, 3)),
            })  # fmt: skip
            links += [{"campaign_id": campaign_id, "program_id": program_id} for program_id, _ in chosen]
            ads.append({"id": new_id("ad"), "campaign_id": campaign_id, "headline": "Earn your degree",
                        "bullets": ["Flexible schedule"], "tags": ["Online Courses"], "badge": None,
                        "landing_url": "https://example.edu/apply", "status": "active"})  # fmt: skip
    for model, rows in ((School, schools), (Campus, campuses), (Program, programs), (Campaign, campaigns),
                        (campaign_programs, links), (Ad, ads)):  # fmt: skip
        db.session.execute(insert(model), rows)  # type: ignore[arg-type]
    publisher = Publisher(name="Bench Guides", domains=["bench.example"])
    db.session.add(publisher)
    db.session.flush()
    _, secret = create_api_key("publisher", publisher_id=publisher.id)
    db.session.commit()
    ids = [c["id"] for c in campaigns]
    rng.shuffle(ids)
    return ids, secret


def activate(campaign_ids: list[str], count: int) -> None:
    from sqlalchemy import update

    from adserver.extensions import db
    from adserver.models import Campaign

    db.session.execute(update(Campaign).values(status="paused"))
    active = campaign_ids[:count]
    for start in range(0, len(active), 500):
        db.session.execute(update(Campaign).where(Campaign.id.in_(active[start : start + 500])).values(status="active"))
    db.session.commit()


def request_params(rng: random.Random, zips: list[tuple[str, str, float, float]]) -> dict[str, Any]:
    params: dict[str, Any] = {"postal_code": rng.choice(zips)[0], "interest": rng.choice(INTERESTS),
                              "visitor_id": f"v{rng.randrange(100_000)}", "limit": 5}  # fmt: skip
    if rng.random() < 0.5:
        params["degree_level"] = rng.choice(DEGREES)
    return params


def measure_decisions(app: Any, rng: random.Random) -> dict[int, tuple[float, float, float]]:
    from adserver.geo import resolve_postal_code
    from adserver.services.serving.decisions import AdRequest, decide_ads

    zips = _zip_codes()
    holder = app.extensions["campaign_index"]
    results = {}
    for size in SIZES:
        with app.app_context():
            activate(CAMPAIGN_IDS, size)
            index = holder.refresh_now()
            assert sum(1 for c in index.campaigns if c.status == "active") == size
        latencies, served = [], 0
        with app.app_context():
            for n in range(DECISIONS + 300):
                params = request_params(rng, zips)
                ad_request = AdRequest(
                    location=resolve_postal_code(params["postal_code"]), interest=params["interest"],
                    degree_level=params.get("degree_level"), modality=None, limit=5,
                    visitor_id=params["visitor_id"], publisher_id=None, is_bot=False, request_id=f"bench{n}",
                )  # fmt: skip
                started = time.perf_counter()
                ads = decide_ads(ad_request)
                elapsed = (time.perf_counter() - started) * 1000
                if n >= 300:  # the first requests warm caches
                    latencies.append(elapsed)
                    served += len(ads)
        results[size] = (percentile(latencies, 50), percentile(latencies, 99), served / DECISIONS)
        print(f"  {size:>6,} active campaigns: p50 {results[size][0]:6.3f} ms  p99 {results[size][1]:6.3f} ms"
              f"  ({results[size][2]:.1f} ads per request, {DECISIONS} requests)", flush=True)  # fmt: skip
    return results


def measure_http(app: Any, secret: str, rng: random.Random, redis_socket: Path) -> None:
    from urllib.parse import urlencode

    zips = _zip_codes()
    paths = [f"/v1/ads?{urlencode(request_params(rng, zips))}" for _ in range(5_000)]
    headers = {"Authorization": f"Bearer {secret}"}

    def ads_request(n: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        return "GET", paths[n % len(paths)], None, headers

    def ping_request(n: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        return "GET", "/ping", None, {}

    def floor_request(n: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        return "GET", "/floor/ads", None, {}

    # Between the trivial endpoint and /v1/ads: the floor (the one Redis round trip and an answer of
    # the same size, no logic; see bench/floor_apps.py), and the API around the decision (key,
    # parameters, postal code, an empty answer: with no active campaign nothing is decided).
    def active(count: int) -> Callable[[], None]:
        def prepare() -> None:
            with app.app_context():
                activate(CAMPAIGN_IDS, count)

        return prepare

    phases = (Phase("trivial GET /ping", "bench.trivial_app:app", ping_request),
              Phase("floor: 1 Redis trip", "bench.floor_apps:ads", floor_request),
              Phase("GET /v1/ads, 0 active", "wsgi:app", ads_request, active(0)),
              Phase("GET /v1/ads", "wsgi:app", ads_request, active(1_000)))  # fmt: skip
    # The warm-up fills the key cache, the connection pools and the processes' caches of campaign values.
    figures = measure_in_rounds(phases, rounds=ROUNDS, warmup_s=4.0, duration_s=5.0,
                                env={**ENV, "FLOOR_REDIS_SOCKET": str(redis_socket)})  # fmt: skip
    trivial = figures["trivial GET /ping"]
    for name in ("floor: 1 Redis trip", "GET /v1/ads, 0 active"):
        print(f"  ratio {name} : trivial = {ratio(figures[name], trivial)[0]:.2f}", flush=True)
    ads, by_round = ratio(figures["GET /v1/ads"], trivial)
    print(f"  ratio /v1/ads : trivial = {ads:.2f}  (target at least 0.4, with {load_generator()}; rounds: "
          f"{', '.join(f'{r:.2f}' for r in by_round)})", flush=True)  # fmt: skip


CAMPAIGN_IDS: list[str] = []


def main() -> int:
    from flask_migrate import upgrade

    from adserver import create_app, embedded_redis
    from config.settings import load_settings

    rng = random.Random(20261126)
    settings = load_settings()
    app = create_app(settings)
    try:
        started = time.monotonic()
        with app.app_context():
            upgrade()
            ids, secret = build_catalog(rng)
            CAMPAIGN_IDS.extend(ids)
            holder = app.extensions["campaign_index"]
            holder.current()
            holder.stop()  # the benchmark rebuilds the index itself, between runs
        print(f"catalog: {SCHOOLS:,} schools, {len(ids):,} campaigns ({time.monotonic() - started:.1f} s to build)")
        print("(a) decision latency in process (rules, the Redis round trip, tokens):", flush=True)
        results = measure_decisions(app, rng)
        app.extensions["campaign_values"].stop()  # this process serves no more
        ratio_p50 = results[10_000][0] / results[1_000][0]
        ratio_p99 = results[10_000][1] / results[1_000][1]
        print(f"  10,000 vs 1,000 campaigns: p50 x{ratio_p50:.2f}, p99 x{ratio_p99:.2f}")
        print(f"(b) requests per second through gunicorn (2 workers, 1,000 active campaigns), {ROUNDS} alternating"
              " rounds:", flush=True)  # fmt: skip
        measure_http(app, secret, rng, settings.embedded_redis_socket)
    finally:
        embedded_redis.stop(settings.embedded_redis_socket)
        shutil.rmtree(_TMP, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
