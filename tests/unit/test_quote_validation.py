"""Which quotes the chain may buy at: docs/design.md section 6, checked as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal

import pytest

from common.adapters.marketdata.quotes import FxRates
from common.adapters.marketdata.validation import fx_problem, quote_problem, usable_rates
from tests.marketdata_fakes import NEW_YORK, NOW, RUN_DATE, quote


def problem(
    price: str = "10", when: datetime = NOW, max_age_days: int = 4, tz: tzinfo = NEW_YORK
) -> str | None:
    return quote_problem(
        quote("p", "S", price, when), run_date=RUN_DATE, tz=tz, max_age_days=max_age_days, now=NOW
    )


def test_a_fresh_positive_quote_is_usable() -> None:
    assert problem() is None


@pytest.mark.parametrize("price", ["0", "-1.5", "NaN", "Infinity", "-Infinity", "sNaN"])
def test_prices_that_are_not_positive_and_finite_are_rejected(price: str) -> None:
    assert problem(price) is not None


def test_a_quote_exactly_max_age_days_old_is_usable_and_one_day_more_is_not() -> None:
    four_days = datetime(2026, 11, 23, 16, 0, tzinfo=NEW_YORK)
    assert problem(when=four_days) is None
    assert "older than 4 day(s)" in (problem(when=four_days - timedelta(days=1)) or "")


def test_the_age_is_counted_in_the_markets_time_zone() -> None:
    # 03:00 UTC on the 23rd is still the 22nd in New York: five days before the run.
    early = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    assert problem(when=early, tz=NEW_YORK) is not None
    assert problem(when=early, tz=UTC) is None


def test_a_max_age_of_zero_accepts_only_the_run_date_itself() -> None:
    assert problem(when=NOW, max_age_days=0) is None
    assert problem(when=NOW - timedelta(days=1), max_age_days=0) is not None


def test_a_quote_dated_after_the_run_date_is_fine_for_a_rerun() -> None:
    rerun = quote_problem(
        quote("p", "S", when=NOW),
        run_date=RUN_DATE - timedelta(days=3),
        tz=NEW_YORK,
        max_age_days=4,
        now=NOW,
    )
    assert rerun is None


def test_a_time_more_than_an_hour_in_the_future_is_a_provider_bug() -> None:
    assert problem(when=NOW + timedelta(minutes=59)) is None
    assert "in the future" in (problem(when=NOW + timedelta(minutes=61)) or "")


def test_a_naive_time_is_rejected() -> None:
    assert "no time zone" in (problem(when=NOW.replace(tzinfo=None)) or "")


def test_bad_rates_are_dropped_and_a_table_without_any_good_rate_is_rejected() -> None:
    rates = {"JPY": Decimal("151.23"), "XXX": Decimal(0), "YYY": Decimal("NaN")}
    assert usable_rates(rates) == {"JPY": Decimal("151.23")}
    table = FxRates(provider="p", base="USD", rates={"XXX": Decimal(0)}, time=NOW)
    assert fx_problem(table, run_date=RUN_DATE, tz=UTC, max_age_days=4, now=NOW) is not None
