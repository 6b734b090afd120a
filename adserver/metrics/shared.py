"""What the Celery workers count, kept in one Redis hash so that any web process reports every worker's.

Fields: ``attempts:<outcome>`` (delivered, rejected, retry, failed), ``leads:<status>`` (a lead
settled: delivered, rejected, failed), ``lag:<bucket>`` and ``lag:sum`` (seconds from acceptance to
delivery) and ``resent`` (jobs the sweeper sent again). Counting never stops a delivery: when Redis
does not answer, the count is lost and logged. A command the Redis client sends again after a lost
reply may count twice; these are operators' figures, not money.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field

import redis

from adserver.extensions import redis_client

log = logging.getLogger(__name__)

KEY = "metrics:deliveries"
# From an idle worker's few milliseconds to a school down for a day (retries back off to hours).
LAG_BUCKETS_S = (0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 24 * 3600.0)


def _lag_bucket(lag_s: float) -> str:
    index = bisect.bisect_left(LAG_BUCKETS_S, lag_s)
    return str(LAG_BUCKETS_S[index]) if index < len(LAG_BUCKETS_S) else "+Inf"


def count_delivery_attempt(outcome: str, settled_as: str | None, lag_s: float | None) -> None:
    """One attempt and its outcome; the status the lead settled in, if it did; and, for a delivered
    lead, the seconds since it was accepted."""
    pipe = redis_client.client.pipeline(transaction=False)
    pipe.hincrby(KEY, f"attempts:{outcome}", 1)
    if settled_as is not None:
        pipe.hincrby(KEY, f"leads:{settled_as}", 1)
    if lag_s is not None:
        pipe.hincrby(KEY, f"lag:{_lag_bucket(lag_s)}", 1)
        pipe.hincrbyfloat(KEY, "lag:sum", lag_s)
    _send(pipe)


def count_resent(jobs: int) -> None:
    pipe = redis_client.client.pipeline(transaction=False)
    pipe.hincrby(KEY, "resent", jobs)
    _send(pipe)


def _send(pipe: redis.client.Pipeline) -> None:  # type: ignore[type-arg]
    try:
        pipe.execute()
    except redis.RedisError:
        log.warning("delivery metrics not counted", exc_info=True)


@dataclass
class DeliveryCounts:
    """The hash, read back: counts by name, and the lag histogram as cumulative (bound, count) pairs."""

    attempts: dict[str, float] = field(default_factory=dict)
    leads: dict[str, float] = field(default_factory=dict)
    lag_buckets: list[tuple[str, float]] = field(default_factory=list)
    lag_sum: float = 0.0
    resent: float = 0.0

    @classmethod
    def parse(cls, raw: dict[bytes, bytes]) -> DeliveryCounts:
        values = {name.decode(): float(value) for name, value in raw.items()}
        counts = cls(lag_sum=values.get("lag:sum", 0.0), resent=values.get("resent", 0.0))
        for name, value in values.items():
            kind, _, which = name.partition(":")
            if kind == "attempts":
                counts.attempts[which] = value
            elif kind == "leads":
                counts.leads[which] = value
        running = 0.0
        for bound in (*(str(b) for b in LAG_BUCKETS_S), "+Inf"):
            running += values.get(f"lag:{bound}", 0.0)
            counts.lag_buckets.append((bound, running))
        return counts
