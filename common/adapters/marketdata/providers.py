"""The market-data providers this project knows, one row each, and their keys.

A row names the `Settings` fields that configure a provider and the source class
that calls it; `bootstrap.build_market_data` builds every row the same way.
Prices come from the price providers in the order listed (Finnhub, then Alpha
Vantage), FX rates from ExchangeRate-API. A provider's name (the key of its
quota and of `api_calls`) is its source's `name`.

This module is light on purpose: a row imports its source's module (and with it
requests) only when a source is built, so the executor checks and registers the
keys (`provider_keys`) before anything else, and a child whose prices are all stored
never loads the providers' clients (executor/context.py `MarketDataOnDemand`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from pydantic import SecretStr

from common.adapters.marketdata.ports import FxSource, PriceSource
from common.domain.errors import ConfigError
from common.platform.config import Settings
from common.platform.redact import register_secret

if TYPE_CHECKING:
    import requests

    from common.adapters.marketdata.transport import Clock, Timeout

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
    """One market-data provider: the prefix of the `Settings` fields that configure it
    (`<prefix>_api_key`, `_base_url`, `_calls_per_minute`, `_calls_per_day`; field `x_y`
    is read from the variable `X_Y`), and `load`, which imports the source class that
    calls it."""

    prefix: str
    load: Callable[[], SourceClass[S]]

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


def _finnhub() -> SourceClass[PriceSource]:
    from common.adapters.marketdata.finnhub import FinnhubSource

    return FinnhubSource


def _alpha_vantage() -> SourceClass[PriceSource]:
    from common.adapters.marketdata.alphavantage import AlphaVantageSource

    return AlphaVantageSource


def _exchange_rate() -> SourceClass[FxSource]:
    from common.adapters.marketdata.exchangerate import ExchangeRateSource

    return ExchangeRateSource


FINNHUB: Provider[PriceSource] = Provider("finnhub", _finnhub)
ALPHA_VANTAGE: Provider[PriceSource] = Provider("alpha_vantage", _alpha_vantage)
EXCHANGE_RATE: Provider[FxSource] = Provider("exchange_rate", _exchange_rate)
PRICE_PROVIDERS = (FINNHUB, ALPHA_VANTAGE)  # in the order the chain tries them
FX_PROVIDER = EXCHANGE_RATE


@dataclass(frozen=True, slots=True)
class Keys:
    """The providers' keys as set, each registered with `redact`."""

    prices: tuple[tuple[Provider[PriceSource], str], ...]  # in chain order, set ones only
    fx: str | None

    @property
    def missing(self) -> tuple[str, ...]:
        """The key variables that are not set."""
        set_ = {provider for provider, _ in self.prices}
        unset = [p.key_variable for p in PRICE_PROVIDERS if p not in set_]
        return (*unset, *([] if self.fx else [FX_PROVIDER.key_variable]))


def provider_keys(settings: Settings) -> Keys:
    """Every key that is set, registered with `redact` before anything can fail and print
    it. Raises `ConfigError` when neither price provider has a key; a missing
    `EXCHANGE_RATE_API_KEY` is allowed (only plans that need a conversion fail)."""
    prices = [(provider, _secret(provider.key_of(settings))) for provider in PRICE_PROVIDERS]
    fx = _secret(FX_PROVIDER.key_of(settings))
    if not any(key for _, key in prices):
        why = "no price provider has a key: set this or the other one"
        raise ConfigError({provider.key_variable: why for provider in PRICE_PROVIDERS})
    return Keys(prices=tuple((provider, key) for provider, key in prices if key), fx=fx)


def _secret(value: SecretStr | None) -> str | None:
    """The key's text, registered with `redact` first so no failure can print it."""
    text = value.get_secret_value() if value is not None else ""
    if not text:
        return None
    register_secret(text)
    return text
