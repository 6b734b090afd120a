import re

from adserver.taxonomy import INTEREST_BY_SLUG, INTERESTS, Interest

REQUIRED = {
    "healthcare-administration": "51.0701",
    "medical-office-management": "51.0705",
    "health-information-technology": "51.0707",
    "medical-billing-coding": "51.0713",
    "registered-nursing": "51.3801",
    "business-administration": "52.0201",
}


def test_size():
    assert len(INTERESTS) >= 40


def test_slugs_unique_and_kebab_case():
    slugs = [interest.slug for interest in INTERESTS]
    assert len(slugs) == len(set(slugs))
    assert all(re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", slug) for slug in slugs)


def test_cip_codes_well_formed_and_unique():
    codes = [interest.cip_code for interest in INTERESTS]
    assert all(re.fullmatch(r"\d{2}\.\d{4}", code) for code in codes)
    assert len(codes) == len(set(codes))


def test_sorted_by_cip_code():
    codes = [interest.cip_code for interest in INTERESTS]
    assert codes == sorted(codes)


def test_names_present():
    assert all(interest.name and interest.name == interest.name.strip() for interest in INTERESTS)


def test_required_interests():
    for slug, code in REQUIRED.items():
        assert INTEREST_BY_SLUG[slug].cip_code == code
    assert INTEREST_BY_SLUG["registered-nursing"] == Interest(
        "registered-nursing", "Registered Nursing/Registered Nurse", "51.3801"
    )
    assert INTEREST_BY_SLUG["business-administration"].name == "Business Administration and Management, General"


def test_index_matches_list():
    assert list(INTEREST_BY_SLUG.values()) == list(INTERESTS)
