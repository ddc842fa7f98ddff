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

from common.adapters.marketdata.chain import DEFAULT_BREAKER_THRESHOLD, PriceChain
from common.adapters.marketdata.limits import ProviderQuota, Sleep, key_fingerprint
from common.adapters.marketdata.ports import QuotaStore
from common.adapters.marketdata.providers import FX_PROVIDER, Provider, S, provider_keys
from common.adapters.marketdata.retrying import RetryPolicy
from common.adapters.marketdata.transport import Clock, build_session
from common.platform.config import Settings


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
    keys = provider_keys(settings)  # registered with `redact` before anything below can fail
    opener = _Opener(settings, session or build_session(), quota_store, clock, sleep, pace_clock)
    sources = [opener.open(provider, key) for provider, key in keys.prices]
    fx = opener.open(FX_PROVIDER, keys.fx) if keys.fx else None
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
        source = provider.load()(
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
