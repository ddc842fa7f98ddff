from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.domain.statuses import Reason
from executor.sizing import (
    Purchase,
    Skip,
    size_purchase,
    too_large_to_record,
)

D = Decimal


def test_fractional_purchase_rounds_down_to_share_decimals() -> None:
    got = size_purchase(
        amount=D("100"),
        fee=D("0"),
        fx_rate=D("1"),
        price=D("3"),
        share_decimals=6,
        fractional=True,
    )
    assert got == Purchase(
        quantity=D("33.333333"), cost=D("99.999999"), cost_basis_delta=D("100.0000")
    )


def test_whole_share_purchase_buys_only_whole_shares() -> None:
    got = size_purchase(
        amount=D("1000"),
        fee=D("1.50"),
        fx_rate=D("1"),
        price=D("189.95"),
        share_decimals=6,
        fractional=False,
    )
    assert isinstance(got, Purchase)
    assert got.quantity == D("5")
    assert got.cost == D("5") * D("189.95") + D("1.50")


def test_a_jpy_plan_buys_a_usd_stock_through_the_fx_rate() -> None:
    # 10,000 JPY less 100 JPY fee, at 0.0066 USD per JPY, AAPL at 190 USD.
    got = size_purchase(
        amount=D("10000"),
        fee=D("100"),
        fx_rate=D("0.0066"),
        price=D("190"),
        share_decimals=6,
        fractional=True,
    )
    assert isinstance(got, Purchase)
    assert got.quantity == D("0.343894")  # 65.34 / 190 = 0.34389473...
    assert got.cost == D("0.343894") * D("190") + D("100") * D("0.0066")


def test_an_amount_too_small_for_one_share_is_skipped() -> None:
    got = size_purchase(
        amount=D("50"),
        fee=D("0"),
        fx_rate=D("1"),
        price=D("189.95"),
        share_decimals=6,
        fractional=False,
    )
    assert got == Skip(Reason.AMOUNT_BELOW_MINIMUM)


def test_an_amount_below_the_smallest_fraction_is_skipped() -> None:
    got = size_purchase(
        amount=D("0.0001"),
        fee=D("0"),
        fx_rate=D("1"),
        price=D("5000"),
        share_decimals=6,
        fractional=True,
    )
    assert got == Skip(Reason.AMOUNT_BELOW_MINIMUM)


@pytest.mark.parametrize("price", [D("0"), D("-1"), D("NaN"), D("Infinity")])
def test_a_price_that_is_not_positive_and_finite_is_refused(price: Decimal) -> None:
    with pytest.raises(ValueError):
        size_purchase(
            amount=D("100"),
            fee=D("0"),
            fx_rate=D("1"),
            price=price,
            share_decimals=6,
            fractional=True,
        )


money = st.decimals(min_value=D("0.0001"), max_value=D("1000000000"), places=4)
rates = st.decimals(min_value=D("0.000001"), max_value=D("100000"), places=8)
prices = st.decimals(min_value=D("0.0001"), max_value=D("1000000"), places=6)


@given(
    amount=money,
    fee_share=st.decimals(min_value=D("0"), max_value=D("0.99"), places=2),
    fx_rate=rates,
    price=prices,
    share_decimals=st.integers(min_value=0, max_value=8),
    fractional=st.booleans(),
)
def test_never_spends_more_than_the_amount_and_respects_share_precision(
    amount: Decimal,
    fee_share: Decimal,
    fx_rate: Decimal,
    price: Decimal,
    share_decimals: int,
    fractional: bool,
) -> None:
    fee = (amount * fee_share).quantize(D("0.0001"))
    got = size_purchase(
        amount=amount,
        fee=fee,
        fx_rate=fx_rate,
        price=price,
        share_decimals=share_decimals,
        fractional=fractional,
    )
    if isinstance(got, Skip):
        assert got.reason == Reason.AMOUNT_BELOW_MINIMUM
        # Skipped only when even the smallest lot costs more than the money available.
        lot = D(1).scaleb(-share_decimals) if fractional else D(1)
        assert lot * price > (amount - fee) * fx_rate
        return
    assert got.quantity > 0
    assert got.quantity * price + fee * fx_rate <= amount * fx_rate
    assert got.cost == got.quantity * price + fee * fx_rate
    places = -got.quantity.as_tuple().exponent  # type: ignore[operator]
    assert places <= (share_decimals if fractional else 0)
    # Round down, not more: one more lot would overspend.
    lot = D(1).scaleb(-share_decimals) if fractional else D(1)
    assert (got.quantity + lot) * price > (amount - fee) * fx_rate


def test_a_purchase_too_large_for_the_ledger_in_the_asset_currency_is_refused() -> None:
    # Valid in USD (under 10^16), but 1.3 x 10^16 KRW of cost basis overflows NUMERIC(20,4).
    sized = size_purchase(
        amount=D("9999999999999"),
        fee=D(0),
        fx_rate=D("1331.52"),
        price=D("1000"),
        share_decimals=6,
        fractional=True,
    )
    assert isinstance(sized, Purchase)
    assert too_large_to_record(sized) == "amount is too large in the asset currency"
    ordinary = size_purchase(
        amount=D("1000"), fee=D(0), fx_rate=D(1), price=D("10"), share_decimals=6, fractional=True
    )
    assert isinstance(ordinary, Purchase) and too_large_to_record(ordinary) is None
