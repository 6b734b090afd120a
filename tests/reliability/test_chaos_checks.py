"""The chaos run's own checks: the personal-data scan finds a visitor's data wherever it is planted
(a log line, a Redis value, a Celery message's encoded body) in any common spelling and stays quiet
on clean data; the settle check waits for a reading to reach its goal or to stop changing; the flaky
school endpoint is repeatable for a seed."""

from __future__ import annotations

import base64
import json

import requests

from reliability.checks import Check, Person, checks_table, find_personal_data, redis_contents, settle
from reliability.servers import FlakySchool

ADA = Person(first_name="Zevkolura", last_name="Qarnbitemo", email="zevkolura.qarnbitemo.7abcd@example.org",
             phone_digits="6025550143")  # fmt: skip
CLEAN_LOG = (
    b'{"ts": "2026-12-03T08:08:34+0000", "level": "INFO", "logger": "adserver.services.leads.delivery", '
    b'"msg": "lead delivery attempt", "lead_id": "lead_01jxyz", "attempt": 2, "latency_ms": 6025550}\n'
)


def test_a_clean_log_has_no_personal_data():
    assert find_personal_data([ADA], [("web.log", CLEAN_LOG)]) == []


def test_an_email_planted_in_a_log_line_is_found_whatever_its_case():
    line = b'{"msg": "delivery failed for ZevKolura.Qarnbitemo.7ABCD@example.org"}\n'
    found = find_personal_data([ADA], [("worker.log", CLEAN_LOG + line)])
    # The address holds the names too: each is a finding of its own.
    assert {(f.source, f.kind) for f in found} == {("worker.log", "email"), ("worker.log", "name")}


def test_a_phone_number_is_found_in_every_common_spelling():
    for spelling in (b"+16025550143", b"+1 602 555 0143", b"(602) 555-0143", b"602.555.0143", b"6025550143"):
        found = find_personal_data([ADA], [("beat.log", b"phone=" + spelling + b";")])
        assert [f.kind for f in found] == ["phone"], spelling


def test_a_name_is_found_as_a_whole_word_only():
    assert [f.kind for f in find_personal_data([ADA], [("web.log", b"hello qarnbitemo!")])] == ["name"]
    assert find_personal_data([ADA], [("web.log", b"xqarnbitemox and 16025550143999")]) == []


def test_a_name_inside_a_celery_message_body_is_found_although_it_is_base64(app):
    from adserver.extensions import redis_client

    body = base64.b64encode(json.dumps([["lead_01", "Zevkolura"], {}, {}]).encode()).decode()
    message = json.dumps({"body": body, "content-encoding": "utf-8", "properties": {"body_encoding": "base64"}})
    with app.app_context():
        redis_client.client.lpush("leads", message)
        redis_client.client.hset("money:cpn_1", mapping={"st": 100, "ok": 1})
        found = find_personal_data([ADA], redis_contents(redis_client.client))
    assert [(f.source, f.kind, f.value) for f in found] == [("leads", "name", "zevkolura")]


def test_an_email_planted_in_a_redis_hash_is_found(app):
    from adserver.extensions import redis_client

    with app.app_context():
        redis_client.client.hset("session:1", mapping={"who": ADA.email})
        redis_client.client.xadd("events:test", {"e": json.dumps({"visitor": "v1"})})
        found = find_personal_data([ADA], redis_contents(redis_client.client))
    assert {(f.source, f.kind) for f in found} == {("session:1", "email"), ("session:1", "name")}


class FakeClock:
    """Time that moves only when the settle loop sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_settle_returns_as_soon_as_the_reading_reaches_its_goal():
    clock = FakeClock()
    readings = iter([5, 3, 0, 0])
    settled = settle(lambda: next(readings), done=lambda n: n == 0, timeout_s=60, interval_s=2,
                     sleep=clock.sleep, clock=clock)  # fmt: skip
    assert (settled.value, settled.settled, settled.waited_s) == (0, True, 4)


def test_settle_without_a_goal_waits_for_readings_to_stop_changing():
    clock = FakeClock()
    readings = iter([1, 2, 2, 3, 3, 3, 4])
    settled = settle(lambda: next(readings), timeout_s=60, interval_s=1, stable_reads=3, sleep=clock.sleep,
                     clock=clock)  # fmt: skip
    assert (settled.value, settled.settled) == (3, True)


def test_settle_gives_up_at_its_deadline_with_the_last_reading():
    clock = FakeClock()
    counter = iter(range(1000))
    settled = settle(lambda: next(counter), done=lambda n: n < 0, timeout_s=10, interval_s=2,
                     sleep=clock.sleep, clock=clock)  # fmt: skip
    assert (settled.value, settled.settled) == (5, False)


def test_a_reading_that_fails_while_a_service_comes_back_counts_as_a_change():
    clock = FakeClock()
    answers = iter([7, ConnectionError(), 7, 7, 7])

    def read() -> int:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    settled = settle(read, timeout_s=60, interval_s=1, stable_reads=3, sleep=clock.sleep, clock=clock)
    assert (settled.value, settled.settled, settled.waited_s) == (7, True, 4)


def test_the_checks_table_says_what_did_not_hold():
    printed = checks_table([Check("no accepted lead lost", "12 stored", "12 stored", True),
                            Check("every delivery final", "0 pending", "2 pending", False)])  # fmt: skip
    lines = printed.splitlines()
    assert lines[0].startswith("| check") and len({len(line) for line in lines}) == 1
    assert lines[2].endswith("| yes  |") and lines[3].endswith("| NO   |")


def test_the_flaky_school_answers_the_same_way_for_the_same_seed():
    def answers(seed: int) -> list[str]:
        school = FlakySchool(seed=seed, hang_s=0.0)
        try:
            for _ in range(40):
                requests.post(school.url("alder"), data=b"{}", timeout=5)
            return [receipt.answer for receipt in school.receipts()]
        finally:
            school.close()

    first = answers(7)
    assert first == answers(7)
    assert len(set(first)) > 3  # deliveries, refusals and retries alike
