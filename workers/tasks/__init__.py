"""Thin Celery tasks; each calls a service. Every task module is imported here."""
