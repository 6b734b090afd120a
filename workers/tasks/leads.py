"""Lead delivery tasks: deliver one job, and the sweeper that re-sends lost or stuck jobs."""

from __future__ import annotations

from celery import shared_task

from adserver.services import delivery


@shared_task(name=delivery.DELIVER_TASK, ignore_result=True)
def deliver(job_id: str) -> str | None:
    """One delivery attempt; safe to run twice (the job row is claimed in the database)."""
    return delivery.deliver_job(job_id)


@shared_task(name="adserver.leads.sweep", ignore_result=True)
def sweep() -> int:
    return delivery.sweep_due_jobs()
