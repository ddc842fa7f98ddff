"""Build the market-data clients once per process (cosmicpython's bootstrap).

One `requests.Session` for every provider, timeouts from the settings, every
key registered with `redact` before any request can fail, only the providers
that have a key, and each one's quota (calls per minute, calls per day) kept
in the `QuotaStore` every process with the same key shares.
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
from common.marketdata.limits import ProviderQuota, Sleep, key_fingerprint
from common.marketdata.ports import FxSource, PriceSource, QuotaStore
from common.marketdata.retrying import RetryPolicy
from common.marketdata.transport import Clock, build_session
from common.redact import register_secret


@dataclass(frozen=True, slots=True)
class MarketData:
    """What an executor chunk prices with: the chain (with FX), the quotas, the session."""

    chain: PriceChain
    fx_source: FxSource | None
    session: requests.Session
    quota_store: QuotaStore
    quotas: dict[str, ProviderQuota]

    @property
    def calls(self) -> Counter[str]:
        """Provider name -> HTTP requests made so far, retries included."""
        return self.chain.calls

    def pacing_timings(self) -> dict[str, int]:
        """What keeping to the shared quotas cost: round trips to the store and their
        time, and the time calls waited for their slots (summed over threads)."""
        quotas = self.quotas.values()
        return {
            "quota_round_trips": sum(q.round_trips for q in quotas),
            "quota_ms": round(sum(q.store_seconds for q in quotas) * 1000),
            "quota_wait_ms": round(sum(q.waited for q in quotas) * 1000),
        }

    def close(self) -> None:
        self.session.close()
        self.quota_store.close()


def build_market_data(
    settings: Settings,
    quota_store: QuotaStore,
    *,
    session: requests.Session | None = None,
    clock: Clock = time.time,
    sleep: Sleep = time.sleep,
    retry: RetryPolicy | None = None,
    breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD,
    pace_clock: Clock = time.monotonic,
) -> MarketData:
    """Sources for every provider with a key, in chain order (Finnhub, Alpha Vantage),
    each paced and counted through `quota_store` under its key's fingerprint (waits measured
    on `pace_clock`, which must not jump; `clock` is the wall clock quotes are dated by).

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
    quotas: dict[str, ProviderQuota] = {}

    def limit(name: str, key: str, per_minute: int, per_day: int | None) -> None:
        quotas[name] = ProviderQuota(
            quota_store,
            name,
            key_fingerprint(key),
            calls_per_minute=per_minute,
            calls_per_day=per_day,
            clock=pace_clock,
            sleep=sleep,
        )

    if finnhub:
        fh = FinnhubSource(
            session,
            base_url=settings.finnhub_base_url,
            api_key=finnhub,
            timeout=timeout,
            clock=clock,
        )
        sources.append(fh)
        limit(fh.name, finnhub, settings.finnhub_calls_per_minute, settings.finnhub_calls_per_day)
    if alpha_vantage:
        av = AlphaVantageSource(
            session,
            base_url=settings.alpha_vantage_base_url,
            api_key=alpha_vantage,
            timeout=timeout,
            clock=clock,
        )
        sources.append(av)
        limit(
            av.name,
            alpha_vantage,
            settings.alpha_vantage_calls_per_minute,
            settings.alpha_vantage_calls_per_day,
        )
    fx: ExchangeRateSource | None = None
    if exchange_rate:
        fx = ExchangeRateSource(
            session,
            base_url=settings.exchange_rate_base_url,
            api_key=exchange_rate,
            timeout=timeout,
            clock=clock,
        )
        limit(
            fx.name,
            exchange_rate,
            settings.exchange_rate_calls_per_minute,
            settings.exchange_rate_calls_per_day,
        )
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
        quotas=quotas,
        retry=retry,
        breaker_threshold=breaker_threshold,
    )
    return MarketData(
        chain=chain, fx_source=fx, session=session, quota_store=quota_store, quotas=quotas
    )


def _secret(value: SecretStr | None) -> str | None:
    """The key's text, registered with `redact` first so no failure can print it."""
    text = value.get_secret_value() if value is not None else ""
    if not text:
        return None
    register_secret(text)
    return text
