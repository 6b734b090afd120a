"""The answer of ``GET /metrics``: the web processes' own counts and the figures read at scrape time
(see the package's docstring)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any, cast

import redis
from prometheus_client import REGISTRY, Metric, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.samples import Sample
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from adserver import clock
from adserver.extensions import db, redis_client
from adserver.metrics import counted, shared
from adserver.models import Lead
from adserver.models.leads import PENDING_DELIVERY
from adserver.services.leads.delivery import OUTBOX_KEY
from adserver.services.serving.counters import CLICK_STREAM, IMPRESSION_STREAM
from config.celery import QUEUES

log = logging.getLogger(__name__)

STREAMS = {"impressions": IMPRESSION_STREAM, "clicks": CLICK_STREAM}
# Kombu's Redis transport keeps the messages handed to a worker and not yet acknowledged in this hash.
UNACKED_KEY = "unacked"
# A pending delivery job this late is overdue: the sweeper sends a job again 10 s after it was due.
OVERDUE_AFTER = timedelta(minutes=1)
# Counting overdue jobs stops here: past that, the figure only needs to say "very many".
OVERDUE_COUNT_LIMIT = 10_000


def render() -> bytes:
    """The text format of every metric."""
    return generate_latest(_Scrape())


class _Scrape:
    """A collector for one scrape (``generate_latest`` only calls ``collect``)."""

    def collect(self) -> Iterator[Metric]:
        families = {family.name: family for family in _counted_in_process()}
        yield from _from_redis(families.setdefault("adserver_leads", _empty_leads_family()))
        yield from _from_database()
        yield from families.values()


def _counted_in_process() -> Iterable[Metric]:
    """Every gunicorn worker's counts (their multiprocess files), or this process's own."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collector = MultiProcessCollector(None)  # type: ignore[no-untyped-call]
        return cast(Iterable[Metric], collector.collect())  # type: ignore[no-untyped-call]
    return REGISTRY.collect()


def _empty_leads_family() -> Metric:
    return CounterMetricFamily("adserver_leads", counted.LEADS_HELP, labels=["outcome", "reason"])


def _from_redis(leads: Metric) -> Iterator[Metric]:
    client = redis_client.client
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(queue)
    pipe.hlen(UNACKED_KEY)
    pipe.llen(OUTBOX_KEY)
    for stream in STREAMS.values():
        pipe.xlen(stream)
        pipe.xrange(stream, "-", "+", count=1)
    pipe.hgetall(shared.KEY)
    try:
        answers: list[Any] = pipe.execute()
    except redis.RedisError:
        log.warning("metrics from Redis not read", exc_info=True)
        return
    now_ms = time.time() * 1000

    depth = GaugeMetricFamily("adserver_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"])
    for queue in QUEUES:
        depth.add_metric([queue], answers.pop(0))
    yield depth
    yield GaugeMetricFamily("adserver_queue_unacked", "Tasks handed to workers and not acknowledged yet (running, "
                            "or held until a retry's countdown).", value=answers.pop(0))  # fmt: skip
    yield GaugeMetricFamily("adserver_outbox_depth", "Accepted leads' delivery jobs announced and not yet relayed "
                            "to the leads queue.", value=answers.pop(0))  # fmt: skip
    length = GaugeMetricFamily("adserver_event_stream_length", "Events waiting in each stream to be stored.",
                               labels=["stream"])  # fmt: skip
    lag = GaugeMetricFamily("adserver_event_persistence_lag_seconds",
                            "Age of the oldest event waiting in each stream (0 when none waits).",
                            labels=["stream"])  # fmt: skip
    for name in STREAMS:
        length.add_metric([name], answers.pop(0))
        oldest = answers.pop(0)
        age_ms = now_ms - int(oldest[0][0].split(b"-")[0]) if oldest else 0.0
        lag.add_metric([name], max(0.0, age_ms / 1000))
    yield length
    yield lag

    deliveries = shared.DeliveryCounts.parse(answers.pop(0))
    attempts = CounterMetricFamily("adserver_lead_delivery_attempts", "Delivery attempts by outcome (delivered, "
                                   "rejected, retry, failed).", labels=["outcome"])  # fmt: skip
    for outcome, value in sorted(deliveries.attempts.items()):
        attempts.add_metric([outcome], value)
    yield attempts
    yield HistogramMetricFamily("adserver_lead_delivery_lag_seconds", "Time from a lead's acceptance to its delivery.",
                                buckets=deliveries.lag_buckets, sum_value=deliveries.lag_sum)  # fmt: skip
    yield CounterMetricFamily("adserver_lead_deliveries_resent", "Delivery jobs the sweeper sent again (a lost "
                              "message or a dead worker).", value=deliveries.resent)  # fmt: skip
    for status, value in sorted(deliveries.leads.items()):
        leads.samples.append(Sample("adserver_leads_total", {"outcome": status, "reason": ""}, value))


def _from_database() -> Iterator[Metric]:
    late = clock.now() - OVERDUE_AFTER
    overdue_jobs = select(Lead.id).where(PENDING_DELIVERY, Lead.next_attempt_at < late).limit(OVERDUE_COUNT_LIMIT)
    try:
        overdue = db.session.scalar(select(func.count()).select_from(overdue_jobs.subquery()))
        db.session.rollback()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("metrics from the database not read", exc_info=True)
        return
    yield GaugeMetricFamily("adserver_lead_deliveries_overdue", "Delivery jobs pending more than a minute past due "
                            f"(counted up to {OVERDUE_COUNT_LIMIT:,}).", value=overdue or 0)  # fmt: skip
