"""Reporting tasks: the retention of raw events (rollups are written where facts are recorded)."""

from __future__ import annotations

from celery import shared_task

from adserver.services.reporting import retention


@shared_task(name="adserver.reports.delete_expired_events", ignore_result=True)
def delete_expired_events() -> int:
    return retention.delete_expired_events()
