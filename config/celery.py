"""Celery settings: at-least-once work on Redis, one queue per kind of work."""

from __future__ import annotations

from typing import Any

from kombu.entity import Queue

QUEUES = ("events", "leads", "reports")


def broker_url(redis_url: str) -> str:
    # Kombu spells a Unix socket "redis+socket://"; redis-py spells it "unix://".
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


def celery_config(redis_url: str) -> dict[str, Any]:
    url = broker_url(redis_url)
    return {
        "broker_url": url,
        "result_backend": None,
        "task_ignore_result": True,
        # A task is acknowledged only after it ran, and given back if its worker dies:
        # every task is safe to run twice (the database decides what happens).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Longer than any task, so Redis does not hand a running task to a second worker.
        "broker_transport_options": {"visibility_timeout": 3600},
        "broker_connection_retry_on_startup": True,
        "task_queues": [Queue(name) for name in QUEUES],  # type: ignore[no-untyped-call]
        "task_default_queue": "events",
        "task_routes": {
            "adserver.events.*": {"queue": "events"},
            "adserver.leads.*": {"queue": "leads"},
            "adserver.privacy.*": {"queue": "leads"},  # opt-out notices go out the way leads do
            "adserver.reports.*": {"queue": "reports"},
        },
        "beat_schedule": BEAT_SCHEDULE,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
    }


# Periodic tasks; each entry names a task defined under workers/tasks/.
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Re-sends delivery jobs whose message was lost or whose worker died (the outbox sweeper).
    "sweep-lead-deliveries": {"task": "adserver.leads.sweep", "schedule": 10.0},
    # The same for opt-out notices to schools.
    "sweep-opt-out-notices": {"task": "adserver.privacy.sweep_notices", "schedule": 30.0},
    # Impressions and clicks reach the database within seconds of being served (reports need them within 60).
    "persist-impressions": {"task": "adserver.events.persist_impressions", "schedule": 5.0},
    "persist-clicks": {"task": "adserver.events.persist_clicks", "schedule": 5.0},
    # Raw events past EVENT_RETENTION_DAYS, in small batches (reports read rollups).
    "delete-expired-events": {"task": "adserver.reports.delete_expired_events", "schedule": 600.0},
    # The first answers of idempotent requests, a day after (they can hold a secret shown once).
    "delete-expired-idempotency-records": {
        "task": "adserver.reports.delete_expired_idempotency_records",
        "schedule": 3600.0,
    },
}
