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

from common.adapters.marketdata.alphavantage import AlphaVantageSource
from common.adapters.marketdata.exchangerate import ExchangeRateSource
from common.adapters.marketdata.finnhub import FinnhubSource
from common.adapters.marketdata.ports import FxSource, PriceSource
from common.adapters.marketdata.transport import Clock, Timeout
from common.platform.config import Settings

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
    """One market-data provider: the source class that calls it, and the prefix of the
    `Settings` fields that configure it (`<prefix>_api_key`, `_base_url`,
    `_calls_per_minute`, `_calls_per_day`; field `x_y` is read from the variable `X_Y`)."""

    source: SourceClass[S]
    prefix: str

    def __post_init__(self) -> None:
        # A misspelt prefix fails at import, not in the first chunk that needs the provider.
        fields = (self.api_key, self.base_url, self.calls_per_minute, self.calls_per_day)
        unknown = [name for name in fields if name not in Settings.model_fields]
        if unknown:
            raise ValueError(f"not Settings fields: {unknown}")

    @property
    def api_key(self) -> str:
        return f"{self.prefix}_api_key"

    @property
    def base_url(self) -> str:
        return f"{self.prefix}_base_url"

    @property
    def calls_per_minute(self) -> str:
        return f"{self.prefix}_calls_per_minute"

    @property
    def calls_per_day(self) -> str:
        return f"{self.prefix}_calls_per_day"

    @property
    def key_variable(self) -> str:
        return self.api_key.upper()

    def key_of(self, settings: Settings) -> SecretStr | None:
        key: SecretStr | None = getattr(settings, self.api_key)
        return key


FINNHUB: Provider[PriceSource] = Provider(FinnhubSource, "finnhub")
ALPHA_VANTAGE: Provider[PriceSource] = Provider(AlphaVantageSource, "alpha_vantage")
EXCHANGE_RATE: Provider[FxSource] = Provider(ExchangeRateSource, "exchange_rate")
PRICE_PROVIDERS = (FINNHUB, ALPHA_VANTAGE)  # in the order the chain tries them
FX_PROVIDER = EXCHANGE_RATE
