"""Recurring schedules: anchored nominal dates, rolled to market days.

The k-th nominal date of a plan is its `start_date` plus k periods, month
arithmetic capped at the month's end and always computed from the anchor
(31 Jan -> 28 Feb -> 31 Mar, never 28 Mar). Each nominal date rolls forward
to the next market day. After a run, the plan's next date is the first
rolled date strictly after the run date.
"""

from __future__ import annotations

import calendar as _calendar
from datetime import date, timedelta
from enum import StrEnum

from common.domain.calendar import MarketCalendar


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


FREQUENCIES: frozenset[str] = frozenset(f.value for f in Frequency)

_DAYS = {Frequency.DAILY: 1, Frequency.WEEKLY: 7, Frequency.BIWEEKLY: 14}
_MONTHS = {Frequency.MONTHLY: 1, Frequency.QUARTERLY: 3, Frequency.YEARLY: 12}


def add_months(anchor: date, months: int) -> date:
    """`anchor` plus `months`, the day capped at the end of the target month."""
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(index, 12)
    last = _calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(anchor.day, last))


def nominal_date(anchor: date, frequency: Frequency, k: int) -> date:
    """The k-th nominal date (k >= 0) of a schedule anchored on `anchor`."""
    if frequency in _DAYS:
        return anchor + timedelta(days=_DAYS[frequency] * k)
    return add_months(anchor, _MONTHS[frequency] * k)


def _periods_before(anchor: date, frequency: Frequency, day: date) -> int:
    """A k whose nominal date is at or before `day` (0 when `day` precedes the anchor)."""
    if day <= anchor:
        return 0
    if frequency in _DAYS:
        return (day - anchor).days // _DAYS[frequency]
    months = (day.year - anchor.year) * 12 + day.month - anchor.month
    return max(0, months // _MONTHS[frequency] - 1)


def next_run_date(
    anchor: date, frequency: Frequency, run_date: date, market: MarketCalendar
) -> date:
    """The first rolled nominal date strictly after `run_date`."""
    k = _periods_before(anchor, frequency, run_date)
    while nominal_date(anchor, frequency, k) <= run_date:
        k += 1
    # Earlier nominal dates can roll past the run date when the run date is
    # itself closed; walk back while they still do.
    while k > 0 and market.roll_forward(nominal_date(anchor, frequency, k - 1)) > run_date:
        k -= 1
    return market.roll_forward(nominal_date(anchor, frequency, k))
