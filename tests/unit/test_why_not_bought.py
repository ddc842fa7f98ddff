"""The detail behind a plan's reason in results/N.json and report.json (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from common.adapters.marketdata.quotes import Price, PriceFailure
from common.domain.statuses import Reason
from executor.pricing import Pricing
from executor.report import why_not_bought
from tests.factories import snapshot

AT = datetime(2026, 11, 27, 15, tzinfo=UTC)


def _pricing(
    prices: dict[str, object], rates: dict[tuple[str, str], object] | None = None
) -> Pricing:
    return Pricing(prices, rates or {}, {}, {}, {})  # type: ignore[arg-type]


def test_a_plan_without_a_price_tells_what_each_provider_answered() -> None:
    said = "finnhub: HTTP 429 (attempts: 4); alphavantage: throttled: Note (attempts: 4)"
    pricing = _pricing({"AAPL": PriceFailure("AAPL", Reason.PROVIDER_ERROR, said)})
    assert why_not_bought(snapshot(), Reason.PROVIDER_ERROR, pricing, 6) == said


def test_a_plan_without_a_rate_tells_which_rate_and_why() -> None:
    plan = snapshot(currency="JPY")
    pricing = _pricing(
        {"AAPL": Price(D("250"), "USD", "finnhub", AT)},
        {("JPY", "USD"): PriceFailure("JPY", Reason.PRICE_UNAVAILABLE, "exchangerate: down")},
    )
    assert why_not_bought(plan, Reason.PRICE_UNAVAILABLE, pricing, 6) == (
        "JPY->USD rate: exchangerate: down"
    )


def test_an_amount_below_one_share_says_what_it_buys_after_conversion() -> None:
    plan = snapshot(currency="JPY", amount=D("10000"), fractional=False)
    pricing = _pricing(
        {"AAPL": Price(D("250"), "USD", "finnhub", AT)},
        {("JPY", "USD"): Price(D("0.0066"), "USD", "exchangerate", AT)},
    )
    assert why_not_bought(plan, Reason.AMOUNT_BELOW_MINIMUM, pricing, 6) == (
        "10000 JPY (amount less fee) = 66.00 USD buys less than one share of AAPL at 250 USD"
    )


def test_an_invalid_plan_needs_no_detail_beyond_its_reason() -> None:
    assert why_not_bought(snapshot(), "invalid_plan: quantity is too large", _pricing({}), 6) == ""
