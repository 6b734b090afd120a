"""Event tasks: move impressions and clicks from Redis streams into the database."""

from __future__ import annotations

from celery import shared_task

from adserver.services.reporting import events


@shared_task(name="adserver.events.persist_impressions", ignore_result=True)
def persist_impressions() -> int:
    return events.persist_impressions()


@shared_task(name="adserver.events.persist_clicks", ignore_result=True)
def persist_clicks() -> int:
    return events.persist_clicks()
