from datetime import UTC, date, datetime, timedelta

import holidays
import pytest

from common.domain.calendar import (
    SUPPORTED_MICS,
    MarketCalendar,
    calendar_for,
    exchanges_of_run,
    library_closures,
    market_timezone,
    run_market_of,
    today_at,
)
from common.domain.errors import UnsupportedMarket

NYSE = calendar_for("XNYS")


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2025, 1, 9), "National Day of Mourning for former President Jimmy Carter"),
        (date(2025, 4, 18), "Good Friday"),
        (date(2026, 6, 19), "Juneteenth National Independence Day"),
        (date(2026, 7, 3), "Independence Day (observed)"),
        (date(2026, 11, 26), "Thanksgiving Day"),
    ],
)
def test_known_nyse_closures_are_not_market_days(day: date, why: str) -> None:
    assert not NYSE.is_market_day(day)
    assert NYSE.closure_name(day) == why


def test_the_day_after_thanksgiving_2026_is_an_nyse_market_day() -> None:
    assert NYSE.is_market_day(date(2026, 11, 27))
    assert NYSE.closure_name(date(2026, 11, 27)) is None


def test_weekends_are_closed_everywhere() -> None:
    for mic in SUPPORTED_MICS:
        market = calendar_for(mic)
        assert not market.is_market_day(date(2026, 11, 28))  # Saturday
        assert not market.is_market_day(date(2026, 11, 29))  # Sunday
        assert market.closure_name(date(2026, 11, 29)) == "weekend"


def test_a_golden_week_day_closes_the_japan_exchange() -> None:
    jpx = calendar_for("XJPX")
    assert not jpx.is_market_day(date(2026, 5, 5))  # Children's Day, a Tuesday
    assert NYSE.is_market_day(date(2026, 5, 5))


def test_roll_forward_keeps_market_days_and_moves_closed_days_to_the_next_open_one() -> None:
    assert NYSE.roll_forward(date(2026, 11, 27)) == date(2026, 11, 27)
    assert NYSE.roll_forward(date(2026, 11, 26)) == date(2026, 11, 27)
    assert NYSE.roll_forward(date(2026, 7, 3)) == date(2026, 7, 6)  # Fri holiday -> Mon
    assert NYSE.roll_forward(date(2026, 11, 26)) == date(2026, 11, 27)


def test_today_is_the_date_in_the_markets_own_timezone() -> None:
    # 02:00 UTC on the 27th is still the 26th in New York and already the 27th in Tokyo.
    instant = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    assert NYSE.today(instant) == date(2026, 11, 26)
    assert calendar_for("XJPX").today(instant) == date(2026, 11, 27)


def test_today_refuses_a_naive_clock() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        NYSE.today(datetime(2026, 11, 27, 12, 0))


def test_an_unsupported_mic_is_a_clear_error() -> None:
    with pytest.raises(UnsupportedMarket, match="unsupported market 'XXXX'"):
        calendar_for("XXXX")


@pytest.mark.parametrize("mic", ["XNYS", "XNAS", "XJPX", "XLON", "XTSE", "XETR", "XHKG", "XASX"])
def test_the_required_markets_are_supported(mic: str) -> None:
    market = calendar_for(mic)
    assert market.mic == mic
    assert market.is_market_day(market.roll_forward(date(2026, 1, 1)))


def test_nasdaq_keeps_the_nyse_calendar_so_its_plans_run_in_the_nyse_run() -> None:
    years = range(2000, 2040)
    nasdaq = set(holidays.financial_holidays("XNAS", years=years))
    nyse = set(holidays.financial_holidays("XNYS", years=years))
    assert nasdaq == nyse
    assert run_market_of("XNAS") == "XNYS"
    assert exchanges_of_run("XNYS") == ("XNYS", "XNAS")
    assert exchanges_of_run("XJPX") == ("XJPX",)


def test_each_exchange_s_own_module_gives_the_days_financial_holidays_gives() -> None:
    # calendar_for loads one exchange's module of `holidays` rather than the whole
    # `holidays.financial` package; the days must be exactly those of the documented
    # rule, `holidays.financial_holidays(MIC)`.
    from common.domain.calendar import SUPPORTED_MICS, _exchange_holidays

    for mic in sorted(SUPPORTED_MICS):
        fast, reference = _exchange_holidays(mic), holidays.financial_holidays(mic)
        for year in (2024, 2026, 2027, 2030):
            days = _days(year)
            assert [d for d in days if d in fast] == [d for d in days if d in reference], (
                mic,
                year,
            )


def _days(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=n) for n in range((date(year + 1, 1, 1) - first).days)]


def test_a_calendar_from_listed_closures_trades_exactly_when_the_librarys_does() -> None:
    # What the executor builds from run.json's closures (2025..2028) against the library,
    # every day of those years and of the years around them (asked of the library).
    for mic in sorted(SUPPORTED_MICS):
        library = calendar_for(mic)
        listed = MarketCalendar.from_closures(mic, 2025, 2028, library_closures(mic, 2025, 2028))
        for year in range(2024, 2030):
            days = _days(year)
            assert [listed.is_market_day(d) for d in days] == [
                library.is_market_day(d) for d in days
            ], (mic, year)
        assert listed.closure_name(date(2026, 11, 26)) == library.closure_name(date(2026, 11, 26))


def test_closures_listed_for_whole_years_leave_other_years_to_the_library() -> None:
    listed = MarketCalendar.from_closures("XNYS", 2026, 2026, {})
    assert listed.is_market_day(date(2026, 12, 25))  # listed: none that year
    assert not listed.is_market_day(date(2027, 12, 24))  # Christmas observed, the library's
    assert listed.roll_forward(date(2027, 12, 24)) == date(2027, 12, 27)
    # A datetime is read as its date, as the library reads it.
    assert not listed.is_market_day(datetime(2027, 12, 24, 10, 0))


def test_library_closures_lists_each_year_s_closures_with_their_names() -> None:
    days = library_closures("XNYS", 2026, 2026)
    assert days[date(2026, 11, 26)] == "Thanksgiving Day"
    assert all(d.year == 2026 for d in days)
    assert [d for d in _days(2026) if d.weekday() < 5 and d not in days] == [
        d for d in _days(2026) if NYSE.is_market_day(d)
    ]


def test_time_zone_and_today_need_no_closures() -> None:
    assert str(market_timezone("XJPX")) == "Asia/Tokyo"
    late_in_new_york = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 21:00 on the 27th there
    assert today_at("XNYS", late_in_new_york) == date(2026, 11, 27)
    with pytest.raises(UnsupportedMarket):
        market_timezone("XXXX")
