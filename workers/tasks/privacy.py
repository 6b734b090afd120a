"""Opt-out notice tasks: deliver one notice, and the sweeper that re-sends lost or stuck notices."""

from __future__ import annotations

from celery import shared_task

from adserver.services.privacy import notices


@shared_task(name=notices.DELIVER_NOTICE_TASK, ignore_result=True)
def deliver_notice(notice_id: str) -> str | None:
    """One delivery attempt; safe to run twice (the notice is claimed in its row)."""
    return notices.deliver_notice(notice_id)


@shared_task(name="adserver.privacy.sweep_notices", ignore_result=True)
def sweep_notices() -> int:
    return notices.sweep_due_notices()
