"""Seeded visitors for the chaos run: ad requests, clicks on served ads and "request info" leads,
with what the API answered to each, so that the run can say afterwards what was really generated.

A request the API answered is an event; one that never reached it (a refused connection) is not;
one cut off mid-way (a killed web worker, a timeout, a 5xx) is in doubt: whether it was recorded is
read back from the database afterwards (impressions by the ``X-Request-Id`` each ad request sends).
Clicks and leads are retried, as a browser or a publisher's server would: a click on the same link
(counted once per impression), a lead with the same ``Idempotency-Key`` and body.
"""

from __future__ import annotations

import random
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
import requests

from reliability.checks import Person

CHROME_USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/130.0.0.0 Safari/537.36")  # fmt: skip
POSTAL_CODES = ("33620", "85004", "10001", "60601", "94103", "30303", "98101", "02108", "75201", "80202")
AREA_CODES = (202, 212, 305, 312, 415, 602, 617, 713, 206, 303, 404, 214)
# How long a click or a lead is retried before the visitor gives up.
RETRY_FOR_S = 120.0
TIMEOUT = (3.0, 15.0)  # connect, read


@dataclass
class Outcome:
    """What one request (after its retries) came to: ``answered`` with a status, ``refused`` (never
    reached the API) or ``cut`` (sent, but no answer came back)."""

    kind: str
    status: int | None = None
    body: Any = None


def send(session: requests.Session, method: str, url: str, **kwargs: Any) -> Outcome:
    try:
        response = session.request(method, url, timeout=TIMEOUT, allow_redirects=False, **kwargs)
    except requests.ConnectionError as exc:
        refused = "NewConnectionError" in repr(exc) or "Connection refused" in repr(exc)
        return Outcome("refused" if refused else "cut")
    except requests.RequestException:
        return Outcome("cut")
    try:
        body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else None
    except ValueError:
        body = None
    return Outcome("answered", response.status_code, body)


@dataclass
class AdCall:
    request_id: str
    at: float
    outcome: Outcome
    impressions: list[str] = field(default_factory=list)


@dataclass
class ClickCall:
    impression_id: str
    campaign_id: str
    at: float
    outcome: Outcome
    tries: int


@dataclass
class LeadCall:
    person: Person
    idempotency_key: str
    campaign_id: str
    at: float
    outcome: Outcome
    tries: int
    lead_id: str | None = None

    @property
    def refused(self) -> str | None:
        """The status and error code of a final refusal (a 4xx that a retry would not change)."""
        outcome = self.outcome
        if outcome.kind != "answered" or outcome.status in (None, 201, 429) or outcome.status >= 500:  # type: ignore[operator]
            return None
        code = (outcome.body or {}).get("error", {}).get("code", "") if isinstance(outcome.body, dict) else ""
        return None if code == "idempotency_in_progress" else f"{outcome.status} {code}"


@dataclass
class Failure:
    at: float
    what: str  # "ads", "click" or "lead"
    how: str  # a status code, "refused" or "cut"


def _syllables(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(count))


def make_person(rng: random.Random, number: int) -> Person:
    """A visitor whose name, email and phone are unlikely to occur anywhere by chance (so finding
    them outside the sealed columns means they leaked)."""
    first = "Zev" + _syllables(rng, 3)
    last = "Qarn" + _syllables(rng, 3)
    suffix = "".join(rng.choice(string.ascii_lowercase) for _ in range(4))
    while True:
        digits = f"{rng.choice(AREA_CODES)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        if phonenumbers.is_valid_number(phonenumbers.parse("+1" + digits)):
            break
    return Person(first, last, f"{first.lower()}.{last.lower()}.{number}{suffix}@example.org", digits)


class Traffic:
    """``visitors`` threads, each a seeded stream of visits: an ad request, sometimes a click on one
    of its ads, sometimes a lead for one of them."""

    def __init__(self, base_url: str, publisher_key: str, seed: int, visitors: int, click_rate: float,
                 lead_rate: float, pause_s: float) -> None:  # fmt: skip
        self.base_url = base_url
        self.publisher_key = publisher_key
        self.seed = seed
        self.visitors = visitors
        self.click_rate = click_rate
        self.lead_rate = lead_rate
        self.pause_s = pause_s
        self.ads: list[AdCall] = []
        self.clicks: list[ClickCall] = []
        self.leads: list[LeadCall] = []
        self.failures: list[Failure] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._people = 0

    # -- running

    def start(self) -> None:
        for n in range(self.visitors):
            thread = threading.Thread(target=self._visit_until_stopped, args=(n,), name=f"visitor-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Stop starting visits and wait for those under way (their retries included)."""
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _visit_until_stopped(self, number: int) -> None:
        rng = random.Random(self.seed * 1000 + number)
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {self.publisher_key}"
            visit = 0
            while not self._stop.is_set():
                self._visit(session, rng, f"v{number}-{visit}")
                visit += 1
                self._stop.wait(rng.uniform(0, 2 * self.pause_s))

    def _fail(self, what: str, outcome: Outcome) -> None:
        with self._lock:
            self.failures.append(Failure(time.time(), what, str(outcome.status or outcome.kind)))

    def _visit(self, session: requests.Session, rng: random.Random, visitor_id: str) -> None:
        request_id = uuid.uuid4().hex
        user_ip = ".".join(str(rng.randint(11, 99) if n == 0 else rng.randint(1, 254)) for n in range(4))
        params = {"postal_code": rng.choice(POSTAL_CODES), "interest": "healthcare-administration", "limit": "5",
                  "visitor_id": visitor_id, "user_agent": CHROME_USER_AGENT, "user_ip": user_ip}  # fmt: skip
        at = time.time()
        outcome = send(session, "GET", f"{self.base_url}/v1/ads", params=params, headers={"X-Request-Id": request_id})
        call = AdCall(request_id, at, outcome)
        answered = outcome.kind == "answered" and outcome.status == 200
        if answered:
            call.impressions = [ad["impression_id"] for ad in outcome.body["ads"]]
        else:
            self._fail("ads", outcome)
        with self._lock:
            self.ads.append(call)
        if not answered or not outcome.body["ads"]:
            return
        ads = outcome.body["ads"]
        if rng.random() < self.click_rate:
            self._click(rng.choice(ads))
        if rng.random() < self.lead_rate:
            with self._lock:
                self._people += 1
                number = self._people
            self._lead(session, rng, rng.choice(ads), make_person(rng, number))

    def _retry(self, what: str, attempt: Any) -> tuple[Outcome, int]:
        """Call ``attempt`` until it gets an answer that is not a 5xx, a 429 or a 409 "in progress",
        for at most ``RETRY_FOR_S``."""
        deadline = time.monotonic() + RETRY_FOR_S
        tries = 0
        while True:
            tries += 1
            outcome: Outcome = attempt()
            code = (outcome.body or {}).get("error", {}).get("code") if isinstance(outcome.body, dict) else None
            retry = (outcome.kind != "answered" or outcome.status >= 500 or outcome.status == 429  # type: ignore[operator]
                     or code == "idempotency_in_progress")  # fmt: skip
            if not retry:
                return outcome, tries
            self._fail(what, outcome)
            if time.monotonic() > deadline:
                return outcome, tries
            time.sleep(0.5)

    def _click(self, ad: dict[str, Any]) -> None:
        path = urlsplit(ad["click_url"]).path
        at = time.time()
        with requests.Session() as browser:
            browser.headers["User-Agent"] = CHROME_USER_AGENT
            outcome, tries = self._retry("click", lambda: send(browser, "GET", self.base_url + path))
        with self._lock:
            self.clicks.append(ClickCall(ad["impression_id"], ad["campaign_id"], at, outcome, tries))

    def _lead(self, session: requests.Session, rng: random.Random, ad: dict[str, Any], person: Person) -> None:
        digits = person.phone_digits
        body = {
            "lead_token": ad["lead_token"], "first_name": person.first_name, "last_name": person.last_name,
            "email": person.email, "phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
            "postal_code": rng.choice(POSTAL_CODES), "education_level": "bachelor", "graduation_year": 2012,
            "birth_year": 1990, "program_id": ad["programs"][0]["id"],
            "consent": {"granted": True, "text": ad["consent_text"], "page_url": "https://guides.example/health-admin"},
        }  # fmt: skip
        key = uuid.uuid4().hex
        at = time.time()
        outcome, tries = self._retry("lead", lambda: send(session, "POST", f"{self.base_url}/v1/leads", json=body,
                                                          headers={"Idempotency-Key": key}))  # fmt: skip
        call = LeadCall(person, key, ad["campaign_id"], at, outcome, tries)
        if outcome.kind == "answered" and outcome.status == 201:
            call.lead_id = outcome.body["id"]
        with self._lock:
            self.leads.append(call)
