"""A lead's profile against its campaign's eligibility rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EDUCATION_ORDER = ("none", "high_school", "associate", "bachelor", "master", "doctorate")


@dataclass(frozen=True, slots=True)
class Profile:
    education_level: str
    birth_year: int | None
    graduation_year: int | None
    military: bool
    rn_license: bool


@dataclass(frozen=True, slots=True)
class Ineligible:
    rule: str
    reason: str


def first_failed_rule(rules: dict[str, Any], profile: Profile, current_year: int) -> Ineligible | None:
    """The first eligibility rule the profile fails, or None when it passes them all.

    Age is ``current_year - birth_year``: the form asks for a year, not a date, so this is the
    age the visitor reaches this year. A rule that needs a field the visitor left out fails.
    """
    min_education = rules.get("min_education")
    if min_education and EDUCATION_ORDER.index(profile.education_level) < EDUCATION_ORDER.index(min_education):
        return Ineligible("min_education", f"requires at least {min_education} education")

    min_age = rules.get("min_age")
    if min_age is not None:
        if profile.birth_year is None:
            return Ineligible("min_age", f"requires birth_year to check the minimum age of {min_age}")
        if current_year - profile.birth_year < min_age:
            return Ineligible("min_age", f"requires an age of at least {min_age}")

    graduation_year_max = rules.get("graduation_year_max")
    if graduation_year_max is not None:
        if profile.graduation_year is None:
            return Ineligible("graduation_year_max", "requires graduation_year")
        if profile.graduation_year > graduation_year_max:
            return Ineligible("graduation_year_max", f"requires graduation in {graduation_year_max} or earlier")

    if rules.get("requires_rn_license") and not profile.rn_license:
        return Ineligible("requires_rn_license", "requires a registered nurse (RN) license")

    if rules.get("military_only") and not profile.military:
        return Ineligible("military_only", "open to military service members and veterans only")
    return None
