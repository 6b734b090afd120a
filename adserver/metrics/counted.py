"""The counters and histogram the web processes keep in process (one file per process under gunicorn)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

AD_REQUESTS = Counter("adserver_ad_requests", "Ad requests decided (GET /v1/ads).")
AD_REQUESTS_FILLED = Counter("adserver_ad_requests_filled", "Ad requests answered with at least one ad.")
ADS_SERVED = Counter("adserver_ads_served", "Ads returned, each one impression.")
# An ad decision takes about a millisecond; the buckets resolve the target (p99 under 2 ms) and its failures.
DECISION_SECONDS = Histogram(
    "adserver_ad_decision_seconds",
    "Time to decide an ad request (candidates, rules, the Redis script, tokens).",
    buckets=(0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5),
)
LEADS_HELP = (
    "Leads by outcome: accepted or refused (with the error code as reason) at intake; delivered, rejected or "
    "failed by the workers; returned by the school."
)
LEADS = Counter("adserver_leads", LEADS_HELP, ["outcome", "reason"])


def count_ad_request(ads_served: int, decision_s: float) -> None:
    AD_REQUESTS.inc()
    if ads_served:
        AD_REQUESTS_FILLED.inc()
        ADS_SERVED.inc(ads_served)
    DECISION_SECONDS.observe(decision_s)


def count_lead(outcome: str, reason: str = "") -> None:
    LEADS.labels(outcome, reason).inc()
