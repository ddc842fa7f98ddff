from calendar import monthrange
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.domain.calendar import calendar_for
from common.domain.schedule import (
    Frequency,
    next_run_date,
    nominal_date,
)

NYSE = calendar_for("XNYS")
MICS = ["XNYS", "XJPX", "XLON", "XTSE", "XETR", "XHKG", "XASX"]

dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2045, 12, 31))


def test_month_end_anchor_caps_each_month_and_never_drifts() -> None:
    anchor = date(2026, 1, 31)
    got = [nominal_date(anchor, Frequency.MONTHLY, k) for k in range(4)]
    assert got == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]


def test_leap_day_anchor_for_a_yearly_plan() -> None:
    anchor = date(2024, 2, 29)
    assert nominal_date(anchor, Frequency.YEARLY, 1) == date(2025, 2, 28)
    assert nominal_date(anchor, Frequency.YEARLY, 4) == date(2028, 2, 29)


def test_a_monthly_plan_due_on_a_holiday_rolls_to_the_next_market_day() -> None:
    # Anchored on the 26th; November 2026's 26th is Thanksgiving.
    anchor = date(2026, 9, 26)
    assert next_run_date(anchor, Frequency.MONTHLY, date(2026, 10, 26), NYSE) == date(2026, 11, 27)


def test_after_running_on_a_rolled_date_the_next_date_comes_from_the_anchor() -> None:
    # Bought on Fri 27 Nov (rolled from the 26th); next is 28 Dec (26 Dec is a Saturday).
    anchor = date(2026, 9, 26)
    assert next_run_date(anchor, Frequency.MONTHLY, date(2026, 11, 27), NYSE) == date(2026, 12, 28)


def test_daily_means_every_market_day() -> None:
    anchor = date(2026, 1, 2)
    assert next_run_date(anchor, Frequency.DAILY, date(2026, 11, 25), NYSE) == date(2026, 11, 27)
    assert next_run_date(anchor, Frequency.DAILY, date(2026, 11, 27), NYSE) == date(2026, 11, 30)


def test_a_plan_that_missed_runs_moves_past_the_run_date_in_one_step() -> None:
    anchor = date(2026, 1, 5)  # a Monday
    following = next_run_date(anchor, Frequency.WEEKLY, date(2026, 3, 18), NYSE)
    assert following == date(2026, 3, 23)


def test_biweekly_and_quarterly_nominal_dates() -> None:
    anchor = date(2026, 1, 30)
    assert nominal_date(anchor, Frequency.BIWEEKLY, 2) == date(2026, 2, 27)
    assert nominal_date(anchor, Frequency.QUARTERLY, 1) == date(2026, 4, 30)


@given(
    year=st.integers(min_value=1990, max_value=2060),
    month=st.integers(min_value=1, max_value=12),
    day=st.integers(min_value=29, max_value=31),
    k=st.integers(min_value=0, max_value=600),
)
def test_a_monthly_plan_anchored_on_the_29th_to_31st_never_drifts(
    year: int, month: int, day: int, k: int
) -> None:
    anchor = date(year, month, min(day, monthrange(year, month)[1]))
    got = nominal_date(anchor, Frequency.MONTHLY, k)
    target_year, target_month = divmod(year * 12 + month - 1 + k, 12)
    target_month += 1
    assert (got.year, got.month) == (target_year, target_month)
    assert got.day == min(anchor.day, monthrange(target_year, target_month)[1])


@given(
    anchor=dates,
    frequency=st.sampled_from(list(Frequency)),
    offset=st.integers(min_value=-30, max_value=4000),
    mic=st.sampled_from(MICS),
)
def test_next_run_date_is_a_market_day_after_the_run_date_and_not_before_its_nominal(
    anchor: date, frequency: Frequency, offset: int, mic: str
) -> None:
    market = calendar_for(mic)
    run_date = anchor + timedelta(days=offset)
    following = next_run_date(anchor, frequency, run_date, market)
    assert following > run_date
    assert market.is_market_day(following)
    # It is the roll of some nominal date k, and no earlier nominal date rolls past the run date.
    k = 0
    while market.roll_forward(nominal_date(anchor, frequency, k)) <= run_date:
        k += 1
    nominal = nominal_date(anchor, frequency, k)
    assert following == market.roll_forward(nominal)
    assert following >= nominal


@pytest.mark.parametrize("frequency", list(Frequency))
def test_every_frequency_walks_a_year_on_market_days_without_repeats(frequency: Frequency) -> None:
    anchor = date(2026, 1, 2)
    seen = []
    day = NYSE.roll_forward(anchor)
    while day < date(2027, 1, 1):
        seen.append(day)
        day = next_run_date(anchor, frequency, day, NYSE)
    assert seen == sorted(set(seen))
    assert all(NYSE.is_market_day(d) for d in seen)
    expected = {
        Frequency.DAILY: 251,
        Frequency.WEEKLY: 52,
        Frequency.BIWEEKLY: 26,
        Frequency.MONTHLY: 12,
        Frequency.QUARTERLY: 4,
        Frequency.YEARLY: 1,
    }
    assert len(seen) == expected[frequency]
