"""Thin Celery tasks; each calls a service. Every task module is imported here."""

from workers.tasks import events, housekeeping, leads, privacy, reports  # noqa: F401
