"""Duplicates, caps and budgets under concurrency: 20 submissions at the same instant against a
real gunicorn (several processes), so only the database can serialise them."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bench.common import free_port, start_gunicorn, stop


@pytest.fixture(scope="module")
def live_url(app) -> Iterator[str]:
    port = free_port()
    process = start_gunicorn("wsgi:app", port, workers=4, env={"WEB_THREADS": "4"})
    yield f"http://127.0.0.1:{port}"
    stop(process)


def _storm(url: str, headers: dict[str, str], bodies: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Send every body at once, one thread each, released together by a barrier."""
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(bodies))

    def send(body: dict[str, Any]) -> None:
        payload = json.dumps(body)
        barrier.wait()
        response = requests.post(f"{url}/v1/leads", data=payload,
                                 headers={**headers, "Content-Type": "application/json"}, timeout=60)  # fmt: skip
        with lock:
            results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _codes(results: list[tuple[int, dict[str, Any]]]) -> Counter[str]:
    return Counter("accepted" if status == 201 else body["error"]["code"] for status, body in results)


def test_20_copies_of_one_lead_at_the_same_instant_make_one_lead(live_url, world):
    bodies = [world.lead(email="same.person@example.com", phone=f"+1 602 555 {1000 + i}") for i in range(20)]
    assert _codes(_storm(live_url, world.publisher_headers, bodies)) == {"accepted": 1, "duplicate_lead": 19}


def test_20_copies_with_one_phone_make_one_lead(live_url, world):
    bodies = [world.lead(phone="+1 602 555 0150") for _ in range(20)]
    assert _codes(_storm(live_url, world.publisher_headers, bodies)) == {"accepted": 1, "duplicate_lead": 19}


def test_the_daily_cap_is_never_exceeded_under_concurrency(live_url, make_world):
    world = make_world(campaign={"caps": {"leads_per_day": 5, "leads_per_month": None}})
    bodies = [world.lead() for _ in range(20)]
    assert _codes(_storm(live_url, world.publisher_headers, bodies)) == {"accepted": 5, "cap_reached": 15}


def test_a_cpl_budget_is_never_overspent_under_concurrency(live_url, make_world):
    world = make_world(campaign={"budget": {"daily_cents": 20000, "total_cents": None},
                                 "caps": {"leads_per_day": None, "leads_per_month": None}})  # fmt: skip
    bodies = [world.lead() for _ in range(20)]
    # 4500 a lead: four fit in 20000.
    assert _codes(_storm(live_url, world.publisher_headers, bodies)) == {"accepted": 4, "cap_reached": 16}


def test_paging_the_feed_while_leads_arrive_concurrently_sees_each_lead_once(live_url, make_world):
    world = make_world(campaign={"caps": {"leads_per_day": None, "leads_per_month": None},
                                 "budget": {"daily_cents": None, "total_cents": None}})  # fmt: skip
    submitted: list[str] = []

    def submit() -> None:
        with requests.Session() as session:
            for _ in range(15):
                response = session.post(f"{live_url}/v1/leads", json=world.lead(), headers=world.publisher_headers,
                                        timeout=60)  # fmt: skip
                assert response.status_code == 201
                submitted.append(response.json()["id"])

    writers = [threading.Thread(target=submit) for _ in range(3)]
    for writer in writers:
        writer.start()
    seen: list[str] = []
    cursor: str | None = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{live_url}/v1/leads", params=params, headers=world.school_headers, timeout=60).json()
        seen.extend(lead["id"] for lead in page["data"])
        cursor = page["next_cursor"] or cursor
        if all(not w.is_alive() for w in writers) and len(seen) >= len(submitted) == 45:
            break
        if not page["data"]:
            time.sleep(0.1)
    for writer in writers:
        writer.join()
    assert len(seen) == len(set(seen)), "a lead was repeated"
    assert sorted(seen) == sorted(submitted), "a lead was skipped"
