"""Build the market-data clients once per process (cosmicpython's bootstrap).

One `requests.Session` for every provider, timeouts from the settings, every
key registered with `redact` before any request can fail, and only the
providers that have a key.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import requests
from pydantic import SecretStr

from common.config import Settings
from common.errors import ConfigError
from common.marketdata.alphavantage import AlphaVantageSource
from common.marketdata.chain import DEFAULT_BREAKER_THRESHOLD, PriceChain
from common.marketdata.exchangerate import ExchangeRateSource
from common.marketdata.finnhub import FinnhubSource
from common.marketdata.limits import RateLimiter, Sleep
from common.marketdata.ports import FxSource, PriceSource
from common.marketdata.retrying import RetryPolicy
from common.marketdata.transport import Clock, build_session
from common.redact import register_secret


@dataclass(frozen=True, slots=True)
class MarketData:
    """What an executor chunk prices with: the chain (with FX), and the session to close."""

    chain: PriceChain
    fx_source: FxSource | None
    session: requests.Session

    @property
    def calls(self) -> Counter[str]:
        """Provider name -> HTTP requests made so far, retries included."""
        return self.chain.calls

    def close(self) -> None:
        self.session.close()


def build_market_data(
    settings: Settings,
    *,
    session: requests.Session | None = None,
    clock: Clock = time.time,
    sleep: Sleep = time.sleep,
    retry: RetryPolicy | None = None,
    breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD,
) -> MarketData:
    """Sources for every provider with a key, in chain order (Finnhub, Alpha Vantage).

    Raises `ConfigError` when neither price provider has a key. A missing
    `EXCHANGE_RATE_API_KEY` is allowed: `chain.fx` then fails with
    `provider_error`, which only plans that need a conversion hit.
    """
    finnhub = _secret(settings.finnhub_api_key)
    alpha_vantage = _secret(settings.alpha_vantage_api_key)
    exchange_rate = _secret(settings.exchange_rate_api_key)
    if not finnhub and not alpha_vantage:
        why = "no price provider has a key: set this or the other one"
        raise ConfigError({"FINNHUB_API_KEY": why, "ALPHA_VANTAGE_API_KEY": why})
    session = session or build_session()
    timeout = (settings.http_connect_timeout, settings.http_read_timeout)
    sources: list[PriceSource] = []
    limiters: dict[str, RateLimiter] = {}

    def limit(name: str, per_minute: int) -> None:
        limiters[name] = RateLimiter(per_minute, clock=clock, sleep=sleep)

    if finnhub:
        fh = FinnhubSource(
            session,
            base_url=settings.finnhub_base_url,
            api_key=finnhub,
            timeout=timeout,
            clock=clock,
        )
        sources.append(fh)
        limit(fh.name, settings.finnhub_calls_per_minute)
    if alpha_vantage:
        av = AlphaVantageSource(
            session,
            base_url=settings.alpha_vantage_base_url,
            api_key=alpha_vantage,
            timeout=timeout,
            clock=clock,
        )
        sources.append(av)
        limit(av.name, settings.alpha_vantage_calls_per_minute)
    fx: ExchangeRateSource | None = None
    if exchange_rate:
        fx = ExchangeRateSource(
            session,
            base_url=settings.exchange_rate_base_url,
            api_key=exchange_rate,
            timeout=timeout,
            clock=clock,
        )
        limit(fx.name, settings.exchange_rate_calls_per_minute)
    if retry is None:
        # The jitter scales with the backoff (both 0.5 s by default): a small
        # PROVIDER_BACKOFF_SECONDS must not still wait up to half a second a retry.
        retry = RetryPolicy(
            max_attempts=settings.provider_max_attempts,
            initial_backoff=settings.provider_backoff_seconds,
            jitter=settings.provider_backoff_seconds,
        )
    chain = PriceChain(
        sources,
        fx_source=fx,
        max_age_days=settings.max_quote_age_days,
        clock=clock,
        sleep=sleep,
        limiters=limiters,
        retry=retry,
        breaker_threshold=breaker_threshold,
    )
    return MarketData(chain=chain, fx_source=fx, session=session)


def _secret(value: SecretStr | None) -> str | None:
    """The key's text, registered with `redact` first so no failure can print it."""
    text = value.get_secret_value() if value is not None else ""
    if not text:
        return None
    register_secret(text)
    return text
