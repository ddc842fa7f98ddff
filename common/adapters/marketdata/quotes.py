"""What the market-data adapters hand back: quotes, FX rates and classified failures.

Every price and rate is a `Decimal` built from the provider's text; every
time is timezone-aware.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from common.domain.statuses import Reason


@dataclass(frozen=True, slots=True)
class Quote:
    """One provider's last price for a symbol, as of `time` (aware)."""

    provider: str
    symbol: str
    price: Decimal
    time: datetime
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class FxRates:
    """Units of each quote currency per 1 unit of `base`, as published at `time` (aware)."""

    provider: str
    base: str
    rates: Mapping[str, Decimal]
    time: datetime
    next_update: datetime | None = None


@dataclass(frozen=True, slots=True)
class PriceFailure:
    """Why a symbol (or FX base) got no usable price. `detail` is short and redacted."""

    key: str
    reason: Reason  # PRICE_UNAVAILABLE or PROVIDER_ERROR
    detail: str


@dataclass(frozen=True, slots=True)
class Price:
    """A quote the run uses (stored in `run_quotes`): a symbol's price, or units of QUOTE per
    1 BASE for an FX pair."""

    value: Decimal
    currency: str | None
    source: str
    time: datetime


Priced = Price | PriceFailure


def fx_key(base: str, quote: str) -> str:
    """How an FX pair is keyed in `run_quotes`: BASE:QUOTE."""
    return f"{base}:{quote}"
