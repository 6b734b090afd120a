"""Tells every web process that the catalog changed, so campaign indexes rebuild."""

from __future__ import annotations

import logging

import redis

from adserver.extensions import redis_client

CATALOG_VERSION_KEY = "catalog:version"
CATALOG_CHANNEL = "catalog:changed"
log = logging.getLogger(__name__)


def notify_catalog_changed() -> None:
    """Bump the catalog version after a committed change. A Redis outage must not fail the
    write that already committed: indexes also rebuild on a timer."""
    try:
        client = redis_client.client
        version = client.incr(CATALOG_VERSION_KEY)
        client.publish(CATALOG_CHANNEL, str(version))
    except redis.RedisError:
        log.warning("could not announce a catalog change; indexes will catch up on their timer")
