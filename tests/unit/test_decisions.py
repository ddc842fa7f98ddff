"""`decide()`: one plan's outcome from its snapshot, its price and its FX rate (no I/O).

The snapshots are of a monthly plan anchored on 2026-10-27, due on Friday
2026-11-27: its next date, 2026-12-27, is a Sunday and rolls to Monday the 28th.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from common.adapters.marketdata.quotes import Price, Priced, PriceFailure
from common.domain.calendar import MarketCalendar, calendar_for, library_closures
from common.domain.outcomes import Outcome
from common.domain.statuses import Decision, Reason
from executor.decisions import decide
from tests.factories import snapshot

D = Decimal
RUN_DATE = date(2026, 11, 27)
NEXT_RUN = date(2026, 12, 28)
QUOTED_AT = datetime(2026, 11, 26, 21, 0, tzinfo=UTC)


def _price(value: str, currency: str | None = "USD", source: str = "finnhub") -> Price:
    return Price(D(value), currency, source, QUOTED_AT)


def _rate(value: str, quote: str = "USD") -> Price:
    return Price(D(value), quote, "exchangerate", QUOTED_AT)


def _decide(
    plan_id: int = 7,
    price: Priced | None = None,
    *,
    fx: Priced | None = None,
    share_decimals: int = 6,
    calendar: MarketCalendar | None = None,
    **plan: object,
) -> Outcome:
    """Decide for plan `plan_id` (the factory's defaults, changed by `plan`) at `price`."""
    return decide(
        snapshot(plan_id, **plan),
        price or _price("190"),
        fx,
        run_date=RUN_DATE,
        share_decimals=share_decimals,
        calendar=calendar or calendar_for("XNYS"),
    )


def _purchase_fields(outcome: Outcome) -> tuple[object, ...]:
    return (
        outcome.quantity,
        outcome.price,
        outcome.fx_rate,
        outcome.cost,
        outcome.price_source,
        outcome.price_time,
    )


def test_a_normal_purchase_is_sized_priced_and_moves_the_schedule_on() -> None:
    got = _decide(7, _price("190"), amount=D("100.0000"), fee=D("1.0000"))

    assert (got.outcome, got.reason) == (Decision.PURCHASE, None)
    assert got.quantity == D("0.521052")  # 99 / 190 = 0.5210526..., rounded down
    assert got.price == D("190")
    assert got.fx_rate == D(1)
    assert got.cost == D("99.9999")  # 0.521052 * 190 + 1 = 99.99988, to 4 places
    assert (got.price_source, got.price_time) == ("finnhub", QUOTED_AT)
    assert got.next_run_date == NEXT_RUN


def test_the_next_date_is_the_run_calendars_not_the_librarys() -> None:
    """The executor dates plans by the closures the planner wrote into run.json: a closure
    the library does not know (an exchange's unscheduled closing) moves the plan on."""
    library = calendar_for("XNYS")
    closed = MarketCalendar.from_closures(
        "XNYS", 2025, 2028, {**library_closures("XNYS", 2025, 2028), NEXT_RUN: "unscheduled"}
    )

    assert _decide(calendar=library).next_run_date == NEXT_RUN
    assert _decide(calendar=closed).next_run_date == date(2026, 12, 29)


def test_an_outcome_carries_the_plan_it_was_decided_for() -> None:
    got = _decide(42, user_id="user-9", symbol="MSFT", version=3, fee=D("0.5000"))

    assert (got.plan_id, got.scheduled_date, got.version) == (42, RUN_DATE, 3)
    assert (got.user_id, got.symbol, got.exchange) == ("user-9", "MSFT", "XNYS")
    assert (got.amount, got.currency, got.fee, got.asset_currency) == (
        D("100.0000"),
        "USD",
        D("0.5000"),
        "USD",
    )


def test_share_decimals_sets_the_precision_of_a_fractional_quantity() -> None:
    assert _decide(price=_price("3"), share_decimals=2).quantity == D("33.33")


def test_a_whole_share_plan_buys_only_whole_shares_and_pays_for_no_more() -> None:
    got = _decide(price=_price("189.95"), amount=D("1000"), fee=D("1.50"), fractional=False)

    assert got.outcome == Decision.PURCHASE
    assert got.quantity == D("5")
    assert got.cost == D("951.2500")  # 5 * 189.95 + 1.50


@pytest.mark.parametrize("reason", [Reason.PRICE_UNAVAILABLE, Reason.PROVIDER_ERROR])
def test_a_symbol_without_a_price_fails_with_the_reason_pricing_gave_and_stays_due(
    reason: Reason,
) -> None:
    got = _decide(price=PriceFailure("AAPL", reason, "no quote"))

    assert (got.outcome, got.reason) == (Decision.FAIL, reason)
    assert got.next_run_date is None  # the schedule does not move
    assert _purchase_fields(got) == (None,) * 6


def test_a_price_quoted_in_another_currency_than_the_assets_is_not_used() -> None:
    got = _decide(price=_price("190", currency="EUR"))

    assert (got.outcome, got.reason) == (Decision.FAIL, Reason.PRICE_UNAVAILABLE)
    assert got.next_run_date is None


def test_a_price_that_names_no_currency_is_taken_as_the_assets() -> None:
    assert _decide(price=_price("190", currency=None)).outcome == Decision.PURCHASE


def test_a_plan_in_the_assets_own_currency_uses_a_rate_of_one_and_ignores_any_fx() -> None:
    failed_rate = PriceFailure("USD:USD", Reason.PROVIDER_ERROR, "down")

    got = _decide(price=_price("50"), fx=failed_rate)

    assert (got.outcome, got.fx_rate, got.quantity) == (Decision.PURCHASE, D(1), D("2"))


def test_a_plan_in_another_currency_converts_its_amount_and_fee_at_the_rate() -> None:
    # 10,000 JPY less a 100 JPY fee, at 0.0066 USD per JPY: 65.34 USD for a 190 USD share.
    got = _decide(
        price=_price("190"),
        fx=_rate("0.0066"),
        amount=D("10000"),
        fee=D("100"),
        currency="JPY",
    )

    assert got.outcome == Decision.PURCHASE
    assert got.fx_rate == D("0.0066")
    assert got.quantity == D("0.343894")  # 65.34 / 190 = 0.3438947...
    assert got.cost == D("65.9999")  # 0.343894 * 190 + 100 * 0.0066 = 65.99986
    assert got.price_source == "finnhub"  # the price's source, not the rate's


@pytest.mark.parametrize("reason", [Reason.PRICE_UNAVAILABLE, Reason.PROVIDER_ERROR])
def test_a_plan_whose_rate_failed_fails_with_the_rates_reason(reason: Reason) -> None:
    got = _decide(fx=PriceFailure("JPY", reason, "no rates"), currency="JPY", amount=D("10000"))

    assert (got.outcome, got.reason) == (Decision.FAIL, reason)
    assert got.next_run_date is None


def test_a_plan_with_no_rate_for_its_currency_fails_as_price_unavailable() -> None:
    got = _decide(fx=None, currency="JPY", amount=D("10000"))

    assert (got.outcome, got.reason) == (Decision.FAIL, Reason.PRICE_UNAVAILABLE)
    assert got.next_run_date is None


def test_an_amount_below_one_share_is_skipped_and_its_schedule_still_advances() -> None:
    got = _decide(price=_price("189.95"), amount=D("100"), fractional=False)

    assert (got.outcome, got.reason) == (Decision.BELOW_MINIMUM, Reason.AMOUNT_BELOW_MINIMUM)
    assert got.next_run_date == NEXT_RUN
    assert _purchase_fields(got) == (None,) * 6


def test_an_amount_below_the_smallest_fraction_is_skipped_too() -> None:
    got = _decide(price=_price("1000000"), amount=D("0.5000"), share_decimals=6)

    assert (got.outcome, got.next_run_date) == (Decision.BELOW_MINIMUM, NEXT_RUN)


def test_a_purchase_too_costly_for_the_ledger_is_an_invalid_plan_and_stays_due() -> None:
    # Valid in KRW, but 1e15 KRW at 1,000 units of the asset currency per KRW overflows
    # the holding's NUMERIC(20,4) cost basis.
    got = _decide(
        price=_price("1", currency="JPY"),
        fx=_rate("1000", quote="JPY"),
        amount=D("1000000000000000"),
        currency="KRW",
        asset_currency="JPY",
    )

    assert got.outcome == Decision.INVALID
    assert got.reason == "invalid_plan: amount is too large in the asset currency"
    assert got.next_run_date is None
    assert _purchase_fields(got) == (None,) * 6


def test_a_purchase_of_too_many_shares_for_the_ledger_is_an_invalid_plan() -> None:
    got = _decide(price=_price("0.00001"), amount=D("1000000000000000"))

    assert (got.outcome, got.reason) == (Decision.INVALID, "invalid_plan: quantity is too large")
    assert got.next_run_date is None
