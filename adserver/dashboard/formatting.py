"""How the dashboard writes figures: whole numbers with thousands separators (never "1.2K"),
money in dollars and cents, ratios as percentages, and a dash where a ratio has no denominator."""

from __future__ import annotations

NONE = "\u2013"  # an en dash: no figure (a ratio over zero)


def whole(count: int) -> str:
    return f"{count:,}"


def dollars(cents: int | None) -> str:
    if cents is None:
        return NONE
    sign = "-" if cents < 0 else ""
    whole_dollars, rest = divmod(abs(cents), 100)
    return f"{sign}${whole_dollars:,}.{rest:02d}"


def percent(ratio: float | None) -> str:
    return NONE if ratio is None else f"{ratio * 100:.2f}%"


FILTERS = {"whole": whole, "dollars": dollars, "percent": percent}
