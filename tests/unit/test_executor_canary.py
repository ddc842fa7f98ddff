"""The canary's network proof: reached providers pass, unreachable ones are named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from common.adapters.marketdata.chain import PriceChain
from common.adapters.marketdata.quotes import FxRates
from common.adapters.marketdata.retrying import RetryPolicy
from common.domain.errors import ProviderUnavailable, Unreachable
from executor.canary import prove_network
from tests.marketdata_fakes import NOW, RUN_DATE, FakeClock, FakeFxSource, FakePriceSource, quote

EUR = FxRates(provider="fakefx", base="EUR", rates={"USD": Decimal("1.08")}, time=NOW)


def _chain(price: FakePriceSource, fx: FakeFxSource) -> PriceChain:
    clock = FakeClock()
    return PriceChain(
        [price], max_age_days=4, fx_source=fx, clock=clock, sleep=clock.sleep,
        retry=RetryPolicy(max_attempts=1),
    )  # fmt: skip


def test_one_quote_and_one_fx_rate_prove_the_network() -> None:
    price = FakePriceSource("finnhub", {"SPY": quote("finnhub", "SPY")})
    fx = FakeFxSource({"EUR": EUR})
    said = prove_network(_chain(price, fx), "XNYS", RUN_DATE)
    assert "SPY by finnhub" in said and "EUR by fakefx" in said
    assert (price.calls["SPY"], fx.calls["EUR"]) == (1, 1)


def test_a_provider_that_answered_without_a_usable_quote_was_reached() -> None:
    price = FakePriceSource("finnhub", {})  # no such symbol: an answer all the same
    prove_network(_chain(price, FakeFxSource({"EUR": EUR})), "XNYS", RUN_DATE)


def test_an_fx_provider_that_cannot_be_reached_is_named() -> None:
    price = FakePriceSource("finnhub", {"SPY": quote("finnhub", "SPY")})
    down = ProviderUnavailable("fakefx", "EUR", "ConnectTimeout: GET https://fx.example/v6/...")
    with pytest.raises(Unreachable) as caught:
        prove_network(_chain(price, FakeFxSource({"EUR": down})), "XNYS", RUN_DATE)
    assert str(caught.value).startswith("canary: FX provider unreachable: fakefx: ")
    assert "ConnectTimeout: GET https://fx.example/v6/" in str(caught.value)
    assert caught.value.exit_code == 78
