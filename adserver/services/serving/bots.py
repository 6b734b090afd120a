"""Recognising declared bots (by user agent, with the maintained crawlerdetect list) and prefetches."""

from __future__ import annotations

import threading
from functools import lru_cache

from crawlerdetect import CrawlerDetect
from werkzeug.datastructures import Headers

_detector = CrawlerDetect()
# The detector keeps its last matches on itself, so calls are serialised.
_lock = threading.Lock()


@lru_cache(maxsize=8192)
def is_declared_bot(user_agent: str) -> bool:
    """True for user agents that say they are crawlers, monitors, or HTTP libraries. User agent
    strings repeat heavily, so answers are cached."""
    if not user_agent:
        return False
    with _lock:
        return bool(_detector.isCrawler(user_agent[:1000]))


def is_prefetch(headers: Headers) -> bool:
    """A browser prefetch or prerender rather than a person's click."""
    purpose = (headers.get("Sec-Purpose") or headers.get("Purpose") or headers.get("X-Purpose") or "").lower()
    return "prefetch" in purpose or "preview" in purpose or headers.get("X-Moz", "").lower() == "prefetch"
