"""Tells every web process that the catalog changed, so campaign indexes rebuild."""

from __future__ import annotations

import logging
import secrets

import redis

from adserver.extensions import redis_client

CATALOG_VERSION_KEY = "catalog:version"
log = logging.getLogger(__name__)


def notify_catalog_changed() -> None:
    """Give the catalog a new version after a committed change. The version is a random token,
    not a counter: a counter starts again from 1 after Redis loses its data and could come back to
    the very value a process last built from, which would then never see the change. A Redis
    outage must not fail the write that already committed: indexes also rebuild on a timer."""
    try:
        redis_client.client.set(CATALOG_VERSION_KEY, secrets.token_hex(8))
    except redis.RedisError:
        log.warning("could not announce a catalog change; indexes will catch up on their timer")
