"""The current time, in one place, so serving rules and tokens can be tested at any moment.

Production code calls ``now()``; tests pin the clock with ``set_now`` (or
``frozen``) instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_pinned: datetime | None = None


def now() -> datetime:
    """The current UTC time, or the pinned time while one is set."""
    return _pinned if _pinned is not None else datetime.now(UTC)


def set_now(moment: datetime | None) -> None:
    """Pin the clock to ``moment`` (timezone-aware), or release it with ``None``."""
    global _pinned
    if moment is not None and moment.tzinfo is None:
        raise ValueError("the clock needs a timezone-aware datetime")
    _pinned = moment.astimezone(UTC) if moment is not None else None


@contextmanager
def frozen(moment: datetime) -> Iterator[None]:
    previous = _pinned
    set_now(moment)
    try:
        yield
    finally:
        set_now(previous)
