"""GET /metrics: figures that move as ads are requested and leads submitted and delivered, summed
over every gunicorn worker, behind the metrics token."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from bench.common import free_port, start_gunicorn, stop
from tests.conftest import METRICS_TOKEN, bearer
from tests.leads.conftest import wait_for


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def scrape(client) -> Any:
    def read() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = client.get("/metrics", headers=bearer(METRICS_TOKEN))
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/plain"
        return parse(response.get_data(as_text=True))

    return read


def test_metrics_need_the_metrics_token(app, client):
    assert client.get("/metrics").status_code == 401
    refused = client.get("/metrics", headers=bearer("not-the-metrics-token-000"))
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/metrics", headers=bearer(METRICS_TOKEN)).status_code == 200


def test_without_a_metrics_token_a_production_server_refuses_metrics(app, client):
    app.config["METRICS_TOKEN"] = None
    try:
        response = client.get("/metrics", headers=bearer(METRICS_TOKEN))
    finally:
        app.config["METRICS_TOKEN"] = METRICS_TOKEN
    assert response.status_code == 403
    assert "METRICS_TOKEN" in response.get_json()["error"]["message"]


def test_ad_requests_fill_and_decision_latency_move_with_each_request(app, client, world, scrape):
    answers: list[int] = []  # the number of ads in each answer

    def ask(**params: Any) -> int:
        response = client.get("/v1/ads", query_string={"postal_code": "85004", **params},
                              headers=world.publisher_headers)  # fmt: skip
        assert response.status_code == 200, response.get_json()
        answers.append(int(response.get_json()["count"]))
        return answers[-1]

    before = scrape()
    wait_for(ask, what="the campaign to be served")  # not until its money counters are built
    for _ in range(3):
        assert ask() == 1
    assert ask(interest="registered-nursing") == 0
    after = scrape()

    def moved(name: str) -> float:
        return value(after, name) - value(before, name)

    assert moved("adserver_ad_requests_total") == len(answers)
    assert moved("adserver_ad_requests_filled_total") == sum(1 for count in answers if count)
    assert moved("adserver_ads_served_total") == sum(answers)
    assert moved("adserver_ad_decision_seconds_count") == len(answers)
    assert value(after, "adserver_event_stream_length", stream="impressions") == sum(answers)
    assert value(after, "adserver_event_persistence_lag_seconds", stream="impressions") >= 0


def test_leads_are_counted_by_outcome_from_intake_to_delivery(app, client, admin, http_world, school_server, scrape):
    from adserver.extensions import db
    from adserver.services.leads.delivery import run_due_jobs
    from adserver.services.leads.intake import flush_accepted_leads

    before = scrape()
    first = http_world.lead()
    accepted = client.post("/v1/leads", json=first, headers=http_world.publisher_headers)
    assert accepted.status_code == 201
    repeat = {**http_world.lead(), **{k: first[k] for k in ("email", "phone")}}
    assert client.post("/v1/leads", json=repeat, headers=http_world.publisher_headers).status_code == 409
    bad_phone = client.post("/v1/leads", json=http_world.lead(phone="12"), headers=http_world.publisher_headers)
    assert bad_phone.status_code == 422
    once, headers = http_world.lead(), {**http_world.publisher_headers, "Idempotency-Key": "one-lead-once"}
    for _ in range(2):  # the repeat is the first answer replayed, not a second lead
        assert client.post("/v1/leads", json=once, headers=headers).status_code == 201
    with app.app_context():
        flush_accepted_leads()
        middle = scrape()
        assert run_due_jobs() == 2
        db.session.remove()
    after = scrape()

    def moved(name: str, since: Any = before, **labels: str) -> float:
        return value(after, name, **labels) - value(since, name, **labels)

    assert moved("adserver_leads_total", outcome="accepted", reason="") == 2
    assert moved("adserver_leads_total", outcome="refused", reason="duplicate_lead") == 1
    assert moved("adserver_leads_total", outcome="refused", reason="validation_error") == 1
    assert value(middle, "adserver_outbox_depth") + value(middle, "adserver_queue_depth", queue="leads") >= 2
    assert moved("adserver_leads_total", outcome="delivered", reason="") == 2
    assert moved("adserver_lead_delivery_attempts_total", outcome="delivered") == 2
    assert moved("adserver_lead_delivery_lag_seconds_count") == 2
    assert moved("adserver_lead_delivery_lag_seconds_sum") > 0
    assert len(school_server.received) == 2


def _per_worker_ad_requests(folder: Path) -> dict[str, float]:
    """Each gunicorn worker's own count of ad requests, read from its file."""
    counts = {}
    for path in folder.glob("counter_*.db"):
        for family in MultiProcessCollector.merge([str(path)], accumulate=False):
            for sample in family.samples:
                if sample.name == "adserver_ad_requests_total" and sample.value:
                    counts[path.stem] = sample.value
    return counts


def test_metrics_sum_the_requests_of_every_gunicorn_worker(app, make_world, tmp_path):
    world = make_world()
    folder = tmp_path / "metrics"
    port = free_port()
    web = start_gunicorn("wsgi:app", port, env={"PROMETHEUS_MULTIPROC_DIR": str(folder)}, workers=2)
    url = f"http://127.0.0.1:{port}"
    answers: list[int] = []
    lock = threading.Lock()

    def ask(times: int) -> None:
        with requests.Session() as session:
            for _ in range(times):
                response = session.get(f"{url}/v1/ads", params={"postal_code": "85004"},
                                       headers=world.publisher_headers, timeout=30)  # fmt: skip
                assert response.status_code == 200, response.text
                with lock:
                    answers.append(response.json()["count"])

    try:
        # Concurrent clients, until both workers have answered some (the kernel picks who accepts).
        for _ in range(10):
            clients = [threading.Thread(target=ask, args=(5,)) for _ in range(6)]
            for thread in clients:
                thread.start()
            for thread in clients:
                thread.join()
            if len(_per_worker_ad_requests(folder)) == 2:
                break
        per_worker = _per_worker_ad_requests(folder)
        scrapes = [parse(requests.get(f"{url}/metrics", headers=bearer(METRICS_TOKEN), timeout=30).text)
                   for _ in range(6)]  # fmt: skip
    finally:
        stop(web)

    assert len(per_worker) == 2, per_worker
    assert sum(per_worker.values()) == len(answers)
    for samples in scrapes:  # whichever worker answered the scrape
        assert value(samples, "adserver_ad_requests_total") == len(answers)
        assert value(samples, "adserver_ad_requests_filled_total") == sum(1 for count in answers if count)
        assert value(samples, "adserver_ads_served_total") == sum(answers)
        assert value(samples, "adserver_ad_decision_seconds_count") == len(answers)
