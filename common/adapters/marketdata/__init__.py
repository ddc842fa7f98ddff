"""Market data: prices (Finnhub, then Alpha Vantage) and FX rates (ExchangeRate-API).

The executor builds it once per process with `build_market_data(settings,
quota_store)` and prices through `MarketData.chain`:

    chain.price(symbol, run_date, tz)       -> Quote | PriceFailure
    chain.fx(base, run_date)                -> FxRates | PriceFailure
    chain.calls                             -> Counter of requests per provider
    chain.quota_exhausted                   -> Counter of keys skipped, budget spent
"""

from common.adapters.marketdata.bootstrap import MarketData, build_market_data
from common.adapters.marketdata.chain import PriceChain
from common.adapters.marketdata.limits import CircuitBreaker, ProviderQuota
from common.adapters.marketdata.ports import FxSource, PriceSource, QuotaStore
from common.adapters.marketdata.quotes import FxRates, PriceFailure, Quote
from common.adapters.marketdata.retrying import RetryPolicy

__all__ = [
    "CircuitBreaker",
    "FxRates",
    "FxSource",
    "MarketData",
    "PriceChain",
    "PriceFailure",
    "PriceSource",
    "ProviderQuota",
    "QuotaStore",
    "Quote",
    "RetryPolicy",
    "build_market_data",
]
