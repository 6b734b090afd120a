"""Pacing: spread a daily budget over the campaign's serving hours.

A campaign whose share of today's budget already spent runs ahead of the share
of today's serving hours that has passed is held back until time catches up,
so a budget lasts the day instead of being spent by mid-morning.
"""

from __future__ import annotations

import math
from datetime import datetime

# Spend may run this far ahead of the clock (a share of the daily budget) before serving pauses,
# so a campaign is never held back for its very first click or lead of the day.
PACING_ALLOWANCE = 0.05


def elapsed_share(hour_start: int, hour_end: int, local: datetime) -> float:
    """The share (0 to 1) of today's serving window ``[hour_start, hour_end)`` that has passed."""
    hours = local.hour + local.minute / 60 + local.second / 3600
    span = hour_end - hour_start
    if span <= 0:
        return 1.0
    return min(1.0, max(0.0, (hours - hour_start) / span))


def spend_allowed(*, daily_budget_cents: int, bid_cents: int, hour_start: int, hour_end: int, local: datetime) -> int:
    """The most a campaign may have spent today and still serve at ``local``: the elapsed share of
    the serving window of its daily budget, and an allowance."""
    allowance = max(PACING_ALLOWANCE, bid_cents / daily_budget_cents)
    return math.floor(daily_budget_cents * (elapsed_share(hour_start, hour_end, local) + allowance))
