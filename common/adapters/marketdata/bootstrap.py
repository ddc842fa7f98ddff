"""Build the market-data clients once per process (cosmicpython's bootstrap).

One `requests.Session` for every provider, timeouts from the settings, every
key registered with `redact` before any request can fail, only the providers
that have a key, and each one's quota (calls per minute, calls per day) kept
in the `QuotaStore` every process with the same key shares. What differs
between providers is their row in `providers.py`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import requests
from pydantic import SecretStr

from common.adapters.marketdata.chain import DEFAULT_BREAKER_THRESHOLD, PriceChain
from common.adapters.marketdata.limits import ProviderQuota, Sleep, key_fingerprint
from common.adapters.marketdata.ports import QuotaStore
from common.adapters.marketdata.providers import FX_PROVIDER, PRICE_PROVIDERS, Provider, S
from common.adapters.marketdata.retrying import RetryPolicy
from common.adapters.marketdata.transport import Clock, build_session
from common.domain.errors import ConfigError
from common.platform.config import Settings
from common.platform.redact import register_secret


@dataclass(frozen=True, slots=True)
class MarketData:
    """What an executor chunk prices with: the chain (with FX), the quotas, the session."""

    chain: PriceChain
    session: requests.Session
    quota_store: QuotaStore
    quotas: dict[str, ProviderQuota]

    @property
    def calls(self) -> Counter[str]:
        """Provider name -> HTTP requests made so far, retries included."""
        return self.chain.calls

    def pacing_timings(self) -> dict[str, int]:
        """What keeping to the shared quotas cost: round trips to the store and their
        time, the time calls waited for their slots (summed over threads), and the slots
        thrown away because they came too late to use."""
        quotas = self.quotas.values()
        return {
            "quota_round_trips": sum(q.round_trips for q in quotas),
            "quota_ms": round(sum(q.store_seconds for q in quotas) * 1000),
            "quota_wait_ms": round(sum(q.waited for q in quotas) * 1000),
            "quota_slots_thrown_away": sum(q.thrown_away for q in quotas),
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
    # Every key is registered with `redact` before anything below can fail.
    price_keys = [(provider, _secret(provider.key_of(settings))) for provider in PRICE_PROVIDERS]
    fx_key = _secret(FX_PROVIDER.key_of(settings))
    if not any(key for _, key in price_keys):
        why = "no price provider has a key: set this or the other one"
        raise ConfigError({provider.key_variable: why for provider in PRICE_PROVIDERS})
    opener = _Opener(settings, session or build_session(), quota_store, clock, sleep, pace_clock)
    sources = [opener.open(provider, key) for provider, key in price_keys if key]
    fx = opener.open(FX_PROVIDER, fx_key) if fx_key else None
    chain = PriceChain(
        sources,
        fx_source=fx,
        max_age_days=settings.max_quote_age_days,
        clock=clock,
        sleep=sleep,
        quotas=opener.quotas,
        retry=retry if retry is not None else _retry_policy(settings),
        breaker_threshold=breaker_threshold,
    )
    return MarketData(
        chain=chain,
        session=opener.session,
        quota_store=quota_store,
        quotas=opener.quotas,
    )


@dataclass(frozen=True, slots=True)
class _Opener:
    """Builds each provider's source on the one session, and its quota on the shared store."""

    settings: Settings
    session: requests.Session
    quota_store: QuotaStore
    clock: Clock
    sleep: Sleep
    pace_clock: Clock
    quotas: dict[str, ProviderQuota] = field(default_factory=dict)  # provider name ->

    def open(self, provider: Provider[S], key: str) -> S:
        settings = self.settings
        source = provider.source(
            self.session,
            base_url=getattr(settings, provider.base_url),
            api_key=key,
            timeout=(settings.http_connect_timeout, settings.http_read_timeout),
            clock=self.clock,
        )
        self.quotas[source.name] = ProviderQuota(
            self.quota_store,
            source.name,
            key_fingerprint(key),
            calls_per_minute=getattr(settings, provider.calls_per_minute),
            calls_per_day=getattr(settings, provider.calls_per_day),
            clock=self.pace_clock,
            sleep=self.sleep,
        )
        return source


def _retry_policy(settings: Settings) -> RetryPolicy:
    # The jitter scales with the backoff (both 0.5 s by default): a small
    # PROVIDER_BACKOFF_SECONDS must not still wait up to half a second a retry.
    return RetryPolicy(
        max_attempts=settings.provider_max_attempts,
        initial_backoff=settings.provider_backoff_seconds,
        jitter=settings.provider_backoff_seconds,
    )


def _secret(value: SecretStr | None) -> str | None:
    """The key's text, registered with `redact` first so no failure can print it."""
    text = value.get_secret_value() if value is not None else ""
    if not text:
        return None
    register_secret(text)
    return text
