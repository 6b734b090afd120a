"""What the suites check and print, kept apart from the processes so each part can be tested alone:
the personal-data scan, waiting for the system to settle, and the printed tables."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Personal data


@dataclass(frozen=True)
class Person:
    """A generated visitor's personal data: what must never be found outside the sealed columns."""

    first_name: str
    last_name: str
    email: str
    phone_digits: str  # ten digits, NANP


@dataclass(frozen=True)
class Finding:
    source: str
    kind: str  # email, phone or name
    value: str


_EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Ten NANP digits in the usual spellings: +1 602 555 0143, (602) 555-0143, 6025550143, 602.555.0143.
_PHONE = re.compile(rb"(?<!\d)(?:\+?1[\s.-]?)?\(?([2-9]\d{2})\)?[\s.-]?(\d{3})[\s.-]?(\d{4})(?!\d)")
_WORD = re.compile(rb"[A-Za-z]{3,}")
# A Celery message (kombu) carries its body base64-encoded: "body": "<base64>".
_ENCODED_BODY = re.compile(rb'"body":\s*"([A-Za-z0-9+/=]{8,})"')


def decoded_bodies(data: bytes) -> Iterator[bytes]:
    """The decoded bodies of the Celery messages in ``data``, so that a name inside a task's
    arguments is found although the message holds it in base64."""
    for match in _ENCODED_BODY.finditer(data):
        try:
            yield base64.b64decode(match.group(1), validate=True)
        except (binascii.Error, ValueError):
            continue


def find_personal_data(people: Iterable[Person], sources: Iterable[tuple[str, bytes]]) -> list[Finding]:
    """Every generated visitor's email, phone number (any common spelling) and name found in the
    sources (name, content), Celery message bodies decoded. Names are matched as whole words,
    ignoring case."""
    emails = {p.email.lower() for p in people}
    phones = {p.phone_digits for p in people}
    names = {n.lower() for p in people for n in (p.first_name, p.last_name)}
    findings: list[Finding] = []
    seen: set[tuple[str, str, str]] = set()

    def note(source: str, kind: str, value: str) -> None:
        if (source, kind, value) not in seen:
            seen.add((source, kind, value))
            findings.append(Finding(source, kind, value))

    for source, data in sources:
        for text in (data, *decoded_bodies(data)):
            for match in _EMAIL.finditer(text):
                if match.group().decode().lower() in emails:
                    note(source, "email", match.group().decode())
            for match in _PHONE.finditer(text):
                digits = b"".join(match.groups()).decode()
                if digits in phones:
                    note(source, "phone", digits)
            for match in _WORD.finditer(text):
                word = match.group().decode().lower()
                if word in names:
                    note(source, "name", word)
    return findings


def redis_contents(client: redis.Redis) -> Iterator[tuple[str, bytes]]:
    """Every key of the client's database with its value, whatever its type, as (key, bytes)."""
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        parts: list[Any]
        if kind == b"string":
            parts = [client.get(key)]
        elif kind == b"hash":
            parts = [item for pair in client.hgetall(key).items() for item in pair]
        elif kind == b"list":
            parts = client.lrange(key, 0, -1)
        elif kind == b"set":
            parts = list(client.smembers(key))
        elif kind == b"zset":
            parts = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            parts = [item for _, fields in client.xrange(key) for pair in fields.items() for item in pair]
        else:
            parts = []
        name = key.decode(errors="replace")
        yield name, b"\n".join([key, *(part if isinstance(part, bytes) else str(part).encode() for part in parts)])


# ---------------------------------------------------------------------------------------------
# Settling


@dataclass(frozen=True)
class Settled(Generic[T]):
    value: T
    settled: bool  # the reading reached what was wanted (or stopped changing) before the deadline
    waited_s: float


def settle(read: Callable[[], T], *, done: Callable[[T], bool] | None = None, timeout_s: float,
           interval_s: float = 2.0, stable_reads: int = 3, sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic) -> Settled[T]:  # fmt: skip
    """Read until ``done(value)`` holds, or, without ``done``, until ``stable_reads`` readings in a
    row are equal; give up at ``timeout_s`` with the last reading. A reading that raises (a service
    still coming back) counts as a change."""
    started = clock()
    last: Any = _NOTHING
    same = 0
    while True:
        try:
            value = read()
        except Exception:
            value, same = _NOTHING, 0
        if value is not _NOTHING:
            if done is not None:
                if done(value):
                    return Settled(value, True, clock() - started)
            else:
                same = same + 1 if value == last else 1
                if same >= stable_reads:
                    return Settled(value, True, clock() - started)
            last = value
        if clock() - started >= timeout_s:
            if last is _NOTHING:
                raise TimeoutError(f"no reading succeeded in {timeout_s:.0f} s")
            return Settled(last, False, clock() - started)
        sleep(interval_s)


_NOTHING: Any = object()


# ---------------------------------------------------------------------------------------------
# Tables


@dataclass(frozen=True)
class Check:
    what: str
    expected: str
    found: str
    held: bool


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table, its columns padded to line up in a terminal."""
    cells = [[str(cell) for cell in header], *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"

    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells[1:])])


def checks_table(checks: Sequence[Check]) -> str:
    return table(("check", "expected", "found", "held"), ((c.what, c.expected, c.found, "yes" if c.held else "NO")
                                                          for c in checks))  # fmt: skip


def as_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)
