"""Reporting tests serve ads and take leads first: the serving fixtures (a publisher, a pinned clock,
ad requests) and the lead tests' local school server."""

from tests.leads.conftest import school_server  # noqa: F401
from tests.serving.conftest import ads, pinned_clock, publisher, redis_db  # noqa: F401
