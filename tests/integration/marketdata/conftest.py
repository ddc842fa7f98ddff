"""The stub market server on loopback and a market-data bootstrap pointed at it.

Time is a FakeClock shared by the stub (quote times, its rate limit) and the
chain (limiter, backoff, validation), so retries and pacing cost no real
time. The read timeout is short so that the stub's slow answer costs 0.3 s.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from common.config import Settings
from common.marketdata import FxRates, MarketData, PriceFailure, Quote, build_market_data
from common.stubs.market_server import StubMarketServer
from tests.marketdata_fakes import NEW_YORK, RUN_DATE, FakeClock

READ_TIMEOUT = 0.3
SLOW_SECONDS = 1.0  # the stub's slow answer: well past READ_TIMEOUT
SYMBOLS = ("AAPL", "MSFT", "IBM")
BASES = ("EUR", "GBP")
BASELINE_CALLS = len(SYMBOLS) + len(BASES)  # S + C: one call per symbol and per FX base


def settings_for(stub: StubMarketServer, **overrides: Any) -> Settings:
    """Settings that point every provider at `stub`, with its keys and short timeouts."""
    values: dict[str, Any] = {
        "finnhub_api_key": stub.finnhub_key,
        "alpha_vantage_api_key": stub.alpha_vantage_key,
        "exchange_rate_api_key": stub.exchange_rate_key,
        "finnhub_base_url": stub.finnhub_url,
        "alpha_vantage_base_url": stub.alpha_vantage_url,
        "exchange_rate_base_url": stub.exchange_rate_url,
        "http_connect_timeout": 0.5,
        "http_read_timeout": READ_TIMEOUT,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stub(clock: FakeClock) -> Iterator[StubMarketServer]:
    with StubMarketServer(clock=clock, slow_seconds=SLOW_SECONDS, unknown_symbols=["NOPE"]) as s:
        yield s


@pytest.fixture
def connect(stub: StubMarketServer, clock: FakeClock) -> Iterator[Any]:
    """`connect(**settings)` -> MarketData against the stub; closed after the test."""
    built: list[MarketData] = []

    def make(**overrides: Any) -> MarketData:
        market = build_market_data(settings_for(stub, **overrides), clock=clock, sleep=clock.sleep)
        built.append(market)
        return market

    yield make
    for market in built:
        market.close()


@pytest.fixture
def market(connect: Any) -> MarketData:
    made: MarketData = connect()
    return made


Result = Quote | FxRates | PriceFailure


def price_the_request(market: MarketData) -> dict[str, Result]:
    """What an executor chunk does: every symbol once, every FX base once."""
    results: dict[str, Result] = dict(market.chain.price_many(SYMBOLS, RUN_DATE, NEW_YORK))
    results.update({base: market.chain.fx(base, RUN_DATE) for base in BASES})
    return results


def outcome(result: Result) -> str:
    """Which provider priced it, or which failure class it got."""
    return result.reason if isinstance(result, PriceFailure) else result.provider


def outcomes(results: Mapping[str, Result]) -> dict[str, str]:
    return {key: outcome(result) for key, result in results.items()}
