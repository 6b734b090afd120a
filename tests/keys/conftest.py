"""Key tests use the lead tests' school server and worlds."""

from tests.leads.conftest import http_world, make_world, school_server, world  # noqa: F401
