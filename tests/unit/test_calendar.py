from datetime import UTC, date, datetime, timedelta

import holidays
import pytest

from common.domain.calendar import (
    SUPPORTED_MICS,
    UnsupportedMarket,
    calendar_for,
    exchanges_of_run,
    run_market_of,
)

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
