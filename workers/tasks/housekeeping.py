"""Housekeeping: the first answers of idempotent requests are kept a day."""

from __future__ import annotations

from celery import shared_task

from adserver.api import idempotency


@shared_task(name="adserver.reports.delete_expired_idempotency_records", ignore_result=True)
def delete_expired_idempotency_records() -> int:
    return idempotency.delete_expired_records()
