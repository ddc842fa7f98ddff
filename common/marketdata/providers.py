"""The market-data providers this project knows, one row each.

A row names the source class that calls the provider and the `Settings` fields
that configure it; `bootstrap.build_market_data` builds every row the same
way. Prices come from the price providers in the order listed (Finnhub, then
Alpha Vantage), FX rates from ExchangeRate-API. A provider's name (the key of
its quota and of `api_calls`) is its source's `name`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import requests
from pydantic import SecretStr

from common.config import Settings
from common.marketdata.alphavantage import AlphaVantageSource
from common.marketdata.exchangerate import ExchangeRateSource
from common.marketdata.finnhub import FinnhubSource
from common.marketdata.ports import FxSource, PriceSource
from common.marketdata.transport import Clock, Timeout

S = TypeVar("S", PriceSource, FxSource)
S_co = TypeVar("S_co", covariant=True)


class SourceClass(Protocol[S_co]):
    """How every provider's source is built (FinnhubSource, AlphaVantageSource, ...)."""

    def __call__(
        self,
        session: requests.Session,
        *,
        base_url: str,
        api_key: str,
        timeout: Timeout,
        clock: Clock,
    ) -> S_co: ...


@dataclass(frozen=True, slots=True)
class Provider(Generic[S]):
    """One market-data provider: the source class that calls it, and the names of the
    `Settings` fields that configure it (field `x_y` is read from the variable `X_Y`)."""

    source: SourceClass[S]
    api_key: str
    base_url: str
    calls_per_minute: str
    calls_per_day: str

    def __post_init__(self) -> None:
        # A misspelt field fails at import, not in the first chunk that needs the provider.
        fields = (self.api_key, self.base_url, self.calls_per_minute, self.calls_per_day)
        unknown = [name for name in fields if name not in Settings.model_fields]
        if unknown:
            raise ValueError(f"not Settings fields: {unknown}")

    @property
    def key_variable(self) -> str:
        return self.api_key.upper()

    def key_of(self, settings: Settings) -> SecretStr | None:
        key: SecretStr | None = getattr(settings, self.api_key)
        return key


FINNHUB: Provider[PriceSource] = Provider(
    FinnhubSource,
    api_key="finnhub_api_key",
    base_url="finnhub_base_url",
    calls_per_minute="finnhub_calls_per_minute",
    calls_per_day="finnhub_calls_per_day",
)
ALPHA_VANTAGE: Provider[PriceSource] = Provider(
    AlphaVantageSource,
    api_key="alpha_vantage_api_key",
    base_url="alpha_vantage_base_url",
    calls_per_minute="alpha_vantage_calls_per_minute",
    calls_per_day="alpha_vantage_calls_per_day",
)
EXCHANGE_RATE: Provider[FxSource] = Provider(
    ExchangeRateSource,
    api_key="exchange_rate_api_key",
    base_url="exchange_rate_base_url",
    calls_per_minute="exchange_rate_calls_per_minute",
    calls_per_day="exchange_rate_calls_per_day",
)
PRICE_PROVIDERS = (FINNHUB, ALPHA_VANTAGE)  # in the order the chain tries them
FX_PROVIDER = EXCHANGE_RATE
