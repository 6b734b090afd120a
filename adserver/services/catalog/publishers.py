"""Publishers: the sites that show ads, each with a publishable (browser) and a secret (server) key."""

from __future__ import annotations

from typing import Any

from adserver.auth import clear_key_cache, create_api_key
from adserver.extensions import db
from adserver.models import Publisher
from adserver.schemas.catalog import PublisherIn
from adserver.services.catalog.changes import notify_catalog_changed
from adserver.validation import merge_patch, parse_body


def create_publisher(data: PublisherIn) -> tuple[Publisher, str, str]:
    """Create a publisher with a publishable (browser) key and a secret (server) key."""
    publisher = Publisher(name=data.name, domains=data.domains)
    db.session.add(publisher)
    db.session.flush()
    _, publishable = create_api_key("publisher", kind="publishable", publisher_id=publisher.id)
    _, secret = create_api_key("publisher", publisher_id=publisher.id)
    db.session.commit()
    notify_catalog_changed()
    return publisher, publishable, secret


def update_publisher(publisher: Publisher, patch: dict[str, Any]) -> Publisher:
    current = {"name": publisher.name, "domains": publisher.domains}
    data = parse_body(PublisherIn, merge_patch(current, patch))
    publisher.name, publisher.domains = data.name, data.domains
    db.session.commit()
    clear_key_cache()
    notify_catalog_changed()
    return publisher
