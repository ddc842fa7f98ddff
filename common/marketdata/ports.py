"""Ports: what the price chain needs from a market-data provider.

A `PriceSource` answers for one symbol: a quote, or None when the provider
says it has no such symbol, so that the chain consults the next source
(beanprice's contract). Anything else is an exception from `common.errors`:

    ProviderUnavailable   timeout, connection error, 5xx: worth retrying
    Throttled             the provider is rate limiting us (may carry retry_after)
    ProviderAccessDenied  bad key, or the key's plan has no access
    ProviderBadResponse   an answer we cannot use (garbage, an error body)
    UnknownSymbol         (FX only) the provider has no such currency
"""

from __future__ import annotations

from typing import Protocol

from common.marketdata.quotes import FxRates, Quote


class PriceSource(Protocol):
    """A provider of last prices, e.g. Finnhub or Alpha Vantage."""

    name: str

    def fetch(self, symbol: str) -> Quote | None:
        """The provider's quote for `symbol`, or None when it has no such symbol.

        The quote is returned as the provider gave it; the chain decides
        whether it is fresh and sane enough to buy at.
        """
        ...


class FxSource(Protocol):
    """A provider of exchange rates from one base currency to all others."""

    name: str

    def cached(self, base: str) -> FxRates | None:
        """Rates for `base` fetched earlier and still current, without a call; else None."""
        ...

    def fetch(self, base: str) -> FxRates:
        """Every rate from `base` in one call; raises `UnknownSymbol` for an unsupported base."""
        ...
