"""Postal code resolution (US ZIP codes and Canadian postal codes) and distances.

The tables live in memory: they are built once, on first use or by `warm()` at app
start, and a lookup is then a regex match and a dict get. Canadian codes resolve at
the FSA level (the first three characters): the location keeps the full code but the
coordinates of its FSA.
"""

from __future__ import annotations

import math
import re
import threading

from adserver.geo.postal import CA_REGION_CODES, US_REGION_CODES, Location, Tables, load_tables

__all__ = [
    "COUNTRIES",
    "REGION_CODES",
    "InvalidPostalCode",
    "Location",
    "distance_miles",
    "resolve_postal_code",
    "warm",
]

COUNTRIES = frozenset({"US", "CA"})
REGION_CODES: frozenset[str] = US_REGION_CODES | CA_REGION_CODES

EARTH_RADIUS_MILES = 3958.8

_US_RE = re.compile(r"([0-9]{5})(?:-[0-9]{4})?")
# Canada Post: no D, F, I, O, Q or U anywhere, and no W or Z as the first letter.
_CA_RE = re.compile(r"([ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z]) ?([0-9][ABCEGHJ-NPRSTV-Z][0-9])")

_tables: Tables | None = None
_lock = threading.Lock()


class InvalidPostalCode(ValueError):
    """Not a well-formed US ZIP or Canadian postal code, or one that does not exist."""


def _get_tables() -> Tables:
    global _tables
    tables = _tables
    if tables is None:
        with _lock:
            if _tables is None:
                _tables = load_tables()
            tables = _tables
    return tables


def warm() -> None:
    """Load the postal code tables now rather than on the first lookup."""
    _get_tables()


def resolve_postal_code(raw: str | None) -> Location:
    """Resolve a US ZIP (12345 or 12345-6789) or Canadian postal code (A1A 1A1, any case, space optional)."""
    if not isinstance(raw, str):
        raise InvalidPostalCode("postal code is required")
    code = raw.strip().upper()
    tables = _tables or _get_tables()

    match = _US_RE.fullmatch(code)
    if match is not None:
        location = tables.zips.get(match[1])
        if location is None:
            raise InvalidPostalCode("unknown US ZIP code")
        return location

    match = _CA_RE.fullmatch(code)
    if match is not None:
        fsa = tables.fsas.get(match[1])
        if fsa is None:
            raise InvalidPostalCode("unknown Canadian postal code")
        region, lat, lon = fsa
        return Location(f"{match[1]} {match[2]}", "CA", region, lat, lon)

    raise InvalidPostalCode("not a US ZIP or Canadian postal code")


def distance_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points in miles (haversine formula)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(a)))
