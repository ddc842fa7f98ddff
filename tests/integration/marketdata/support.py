"""Helpers for the market-data integration tests: settings for the stub, the standard request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.adapters.marketdata.bootstrap import MarketData
from common.adapters.marketdata.quotes import FxRates, PriceFailure, Quote
from common.platform.config import Settings
from devkit.stubs.market_server import StubMarketServer
from tests.marketdata_fakes import NEW_YORK, RUN_DATE, price_each

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
        "alpha_vantage_calls_per_day": None,  # budgets have tests of their own
    }
    values.update(overrides)
    return Settings(**values)


Result = Quote | FxRates | PriceFailure


def price_the_request(market_data: MarketData) -> dict[str, Result]:
    """What an executor chunk does: every symbol once, every FX base once."""
    results: dict[str, Result] = dict(price_each(market_data.chain, SYMBOLS, RUN_DATE, NEW_YORK))
    results.update({base: market_data.chain.fx(base, RUN_DATE) for base in BASES})
    return results


def outcome(result: Result) -> str:
    """Which provider priced it, or which failure class it got."""
    return result.reason if isinstance(result, PriceFailure) else result.provider


def outcomes(results: Mapping[str, Result]) -> dict[str, str]:
    return {key: outcome(result) for key, result in results.items()}
