"""Lead delivery tasks: deliver one lead (its delivery job), and the sweeper that re-sends lost or stuck jobs."""

from __future__ import annotations

from celery import shared_task

from adserver.services.leads import delivery


@shared_task(name=delivery.DELIVER_TASK, ignore_result=True)
def deliver(lead_id: str) -> str | None:
    """One delivery attempt; safe to run twice (the job is claimed in the lead's row)."""
    return delivery.deliver_job(lead_id)


@shared_task(name="adserver.leads.sweep", ignore_result=True)
def sweep() -> int:
    return delivery.sweep_due_jobs()
