"""Reporting tests serve ads first: the serving fixtures (a publisher, a pinned clock, ad requests)."""

from tests.serving.conftest import ads, pinned_clock, publisher, redis_db  # noqa: F401
