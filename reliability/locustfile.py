"""Locust users for ``make load``: a publisher's server with the realistic mix of about 90% ad
requests, 8% clicks on ads it was served and 2% lead submissions for them.

Read from the environment (``reliability/load.py`` sets it): ``LOAD_PUBLISHER_KEY`` (a secret
key), ``LOAD_POSTAL_CODES`` and ``LOAD_INTERESTS`` (comma-separated).
"""

from __future__ import annotations

import itertools
import os
import random
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from locust import HttpUser, constant, task

CHROME_USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/130.0.0.0 Safari/537.36")  # fmt: skip
POSTAL_CODES = os.environ.get("LOAD_POSTAL_CODES", "33620").split(",")
INTERESTS = os.environ.get("LOAD_INTERESTS", "healthcare-administration").split(",")
# Distinct people across every user of this process, so no lead is a duplicate.
_people = itertools.count(1)


class Publisher(HttpUser):  # type: ignore[misc]
    wait_time = constant(0)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {os.environ['LOAD_PUBLISHER_KEY']}"
        self.served: deque[dict[str, Any]] = deque(maxlen=50)
        self.rng = random.Random()

    @task(90)
    def request_ads(self) -> None:
        params = {"postal_code": self.rng.choice(POSTAL_CODES), "interest": self.rng.choice(INTERESTS), "limit": 5,
                  "visitor_id": f"v{self.rng.randrange(10**9)}", "user_agent": CHROME_USER_AGENT}  # fmt: skip
        with self.client.get("/v1/ads", params=params, name="/v1/ads", catch_response=True) as response:
            if response.status_code == 200:
                self.served.extend(response.json()["ads"])
            else:
                response.failure(f"{response.status_code}")

    def _an_ad(self) -> dict[str, Any] | None:
        if not self.served:
            self.request_ads()
        return self.served.popleft() if self.served else None

    @task(8)
    def click(self) -> None:
        ad = self._an_ad()
        if ad is None:
            return
        path = urlsplit(ad["click_url"]).path
        with self.client.get(path, name="/v1/click/{token}", allow_redirects=False, catch_response=True,
                             headers={"User-Agent": CHROME_USER_AGENT}) as response:  # fmt: skip
            if response.status_code != 302:
                response.failure(f"{response.status_code}")

    @task(2)
    def submit_lead(self) -> None:
        ad = self._an_ad()
        if ad is None:
            return
        n = next(_people)
        tag = f"{os.getpid()}x{n}"
        body = {
            "lead_token": ad["lead_token"], "first_name": "Load", "last_name": f"Visitor{tag}",
            "email": f"load.visitor.{tag}@example.org", "phone": f"+1 602 {200 + n // 10000 % 800} {n % 10000:04d}",
            "postal_code": self.rng.choice(POSTAL_CODES), "education_level": "bachelor", "graduation_year": 2012,
            "birth_year": 1990, "program_id": ad["programs"][0]["id"] if ad["programs"] else None,
            "consent": {"granted": True, "text": ad["consent_text"], "page_url": "https://guides.example/article"},
        }  # fmt: skip
        with self.client.post("/v1/leads", json=body, name="/v1/leads", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code} {response.text[:120]}")
