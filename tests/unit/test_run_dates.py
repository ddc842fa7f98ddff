"""Which run dates may run: the pure rule of common/domain/calendar.py (today passed in)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from common.domain.calendar import (
    SUPPORTED_MICS,
    calendar_for,
    check_run_date,
    covered_years,
    resolve_run_day,
)
from common.domain.errors import RunDateRefused

TODAY = date(2026, 12, 6)
NOW = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)  # noon on TODAY in New York


def test_today_runs_and_is_not_a_catch_up() -> None:
    day = resolve_run_day("XNYS", None, NOW)
    assert (day.key.run_date, day.today, day.catch_up) == (TODAY, TODAY, False)


def test_a_past_date_runs_as_a_catch_up() -> None:
    day = resolve_run_day("XNYS", date(2026, 11, 27), NOW)
    assert (day.key.run_date, day.today, day.catch_up) == (date(2026, 11, 27), TODAY, True)


def test_a_date_after_today_is_refused_unless_the_operator_means_it() -> None:
    with pytest.raises(RunDateRefused, match=r"2026-12-08 is in the future \(today is 2026-12-06"):
        check_run_date("XNYS", date(2026, 12, 8), TODAY)
    meant = resolve_run_day("XNYS", date(2026, 12, 8), NOW, allow_future=True)
    assert (meant.key.run_date, meant.catch_up) == (date(2026, 12, 8), False)


@pytest.mark.parametrize(
    ("mic", "day"),
    [
        ("XPAR", date(2015, 12, 25)),  # Christmas, before the library's Euronext data
        ("XETR", date(2015, 4, 3)),  # Good Friday, before its Xetra data
        ("XNYS", date(2126, 12, 4)),  # after the last year it computes
        ("XBUE", date(2025, 12, 1)),
    ],
)
def test_a_date_outside_the_calendar_data_is_refused_even_when_meant(mic: str, day: date) -> None:
    first, last = covered_years(mic)
    assert not first <= day.year <= last
    with pytest.raises(RunDateRefused, match=f"outside the years {mic}'s calendar data covers"):
        check_run_date(mic, day, TODAY, allow_future=True)


def test_before_its_data_the_library_would_call_a_holiday_a_market_day() -> None:
    # Why the range matters: the library lists nothing outside it.
    assert calendar_for("XPAR").is_market_day(date(2015, 12, 25))
    assert not calendar_for("XPAR").is_market_day(date(2019, 12, 25))


def test_every_supported_market_has_a_range_that_holds_today() -> None:
    for mic in SUPPORTED_MICS:
        first, last = covered_years(mic)
        assert first <= TODAY.year <= last, mic
