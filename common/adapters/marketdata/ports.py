"""Ports: what the price chain needs from a market-data provider.

A `PriceSource` answers for one symbol: a quote, or None when the provider
says it has no such symbol, so that the chain consults the next source
(beanprice's contract). Anything else is an exception from `common.domain.errors`:

    ProviderUnavailable   timeout, connection error, 5xx: worth retrying
    Throttled             the provider is rate limiting us (may carry retry_after)
    ProviderAccessDenied  bad key, or the key's plan has no access
    ProviderBadResponse   an answer we cannot use (garbage, an error body)
    UnknownSymbol         (FX only) the provider has no such currency

A `QuotaStore` holds what every process calling one provider with one key
shares: the pace of its calls and its daily count (common/adapters/store/quotas.py).
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from common.adapters.marketdata.quotes import FxRates, Quote
from common.domain.pacing import Lease


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


class QuotaStore(Protocol):
    """The state every process calling a provider with one API key shares: call slots,
    pauses and daily counts, keyed by provider and `key_id` (a fingerprint of the key).

    Instants are seconds since the epoch on the store's own clock, so that
    processes on different hosts agree on when a slot is.
    """

    def lease(self, provider: str, key_id: str, count: int, spacing: float) -> tuple[Lease, float]:
        """The next `count` call slots `spacing` seconds apart, and the store's clock now."""
        ...

    def pause(self, provider: str, key_id: str, seconds: float) -> None:
        """Give out no slot for the next `seconds` (the provider said Retry-After)."""
        ...

    def spend(self, provider: str, key_id: str, budget: int, day: date | None = None) -> bool:
        """Count one call against `day`'s budget (default: today in UTC, the store's clock);
        False, and nothing counted, when `budget` calls were counted already."""
        ...

    def close(self) -> None:
        """Give back what the store holds (a connection); the next call takes it again."""
        ...
