"""The price chain: Finnhub, then Alpha Vantage, each quote checked, each failure classified.

For each symbol the chain asks its sources in order, through each provider's
shared quota, retry policy and circuit breaker, and keeps the first quote
that passes `validation`. When none does, the symbol gets a `PriceFailure`:

    price_unavailable   every provider answered (no such symbol, or an unusable quote),
                        or was skipped because its daily budget is spent
    provider_error      at least one provider did not answer (timeouts, 5xx,
                        throttling after retries, refused key, garbage, circuit open)

A provider whose daily budget is spent is skipped without a call and counted
in `quota_exhausted`; retrying today cannot help, so it does not make a
symbol a `provider_error` by itself.

One chain lives as long as one executor chunk; its circuit breakers and its
`calls` and `quota_exhausted` counters are that chunk's.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, tzinfo
from typing import TypeVar

from common.adapters.marketdata.limits import CircuitBreaker, ProviderQuota, Sleep
from common.adapters.marketdata.ports import FxSource, PriceSource
from common.adapters.marketdata.quotes import FxRates, PriceFailure, Quote
from common.adapters.marketdata.retrying import RetryPolicy, call_with_retry
from common.adapters.marketdata.transport import Clock, short
from common.adapters.marketdata.validation import fx_problem, quote_problem, usable_rates
from common.domain.errors import (
    MarketDataError,
    ProviderAccessDenied,
    QuotaExhausted,
    Throttled,
    UnknownSymbol,
)
from common.domain.statuses import Reason
from common.platform.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")

DEFAULT_BREAKER_THRESHOLD = 3  # consecutive failed symbols before a provider is skipped
FAILURE_DETAIL_LIMIT = 300


@dataclass(frozen=True, slots=True)
class _NoAnswer:
    """A provider that did not answer usably (after retries), and why."""

    why: str


@dataclass(frozen=True, slots=True)
class _Spent:
    """A provider skipped without a call: its daily budget is spent."""

    budget: int


class PriceChain:
    """Prices symbols and FX bases for one chunk.

    Safe to call from several threads at once: each provider's quota paces
    every caller together (and every other process with the same key), and the
    counters and circuit breakers are updated under one lock.
    """

    def __init__(
        self,
        sources: Sequence[PriceSource],
        *,
        max_age_days: int,
        fx_source: FxSource | None = None,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
        quotas: Mapping[str, ProviderQuota] | None = None,
        retry: RetryPolicy | None = None,
        breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD,
    ) -> None:
        self.sources = tuple(sources)
        self.fx_source = fx_source
        self.max_age_days = max_age_days
        self.calls: Counter[str] = Counter()  # provider name -> requests made (retries included)
        self.quota_exhausted: Counter[str] = Counter()  # provider name -> keys skipped for budget
        self._clock = clock
        self._sleep = sleep
        self._quotas = dict(quotas or {})
        self._retry = retry or RetryPolicy()
        names = [s.name for s in self.sources] + ([fx_source.name] if fx_source else [])
        self.breakers = {name: CircuitBreaker(breaker_threshold) for name in names}
        self._lock = threading.Lock()

    def price(self, symbol: str, run_date: date, tz: tzinfo) -> Quote | PriceFailure:
        """The first valid quote for `symbol` on `run_date` (dates counted in `tz`), or why not."""
        notes: list[str] = []
        everyone_answered = True
        for source in self.sources:
            answer = self._ask(source.name, symbol, source.fetch)
            if isinstance(answer, _Spent):
                notes.append(f"{source.name}: daily budget of {answer.budget} call(s) spent")
                continue
            if isinstance(answer, _NoAnswer):
                everyone_answered = False
                notes.append(f"{source.name}: {answer.why}")
                continue
            if answer is None:
                notes.append(f"{source.name}: no such symbol")
                continue
            problem = quote_problem(
                answer, run_date=run_date, tz=tz, max_age_days=self.max_age_days, now=self._now()
            )
            if problem is None:
                return answer
            log.info("rejected %s quote for %s: %s", source.name, symbol, problem)
            notes.append(f"{source.name}: {problem}")
        reason = Reason.PRICE_UNAVAILABLE if everyone_answered else Reason.PROVIDER_ERROR
        return PriceFailure(symbol, reason, short("; ".join(notes), FAILURE_DETAIL_LIMIT))

    def fx(self, base: str, run_date: date) -> FxRates | PriceFailure:
        """Every rate from `base`, checked like a quote (dates in UTC), or why not."""
        if self.fx_source is None:
            return PriceFailure(base, Reason.PROVIDER_ERROR, "no FX provider configured")
        source = self.fx_source
        answer: FxRates | _NoAnswer | _Spent | None = source.cached(base)
        if answer is None:
            answer = self._ask(source.name, base, source.fetch)
        if isinstance(answer, _Spent):
            why = f"{source.name}: daily budget of {answer.budget} call(s) spent"
            return PriceFailure(base, Reason.PRICE_UNAVAILABLE, why)
        if isinstance(answer, _NoAnswer):
            return PriceFailure(base, Reason.PROVIDER_ERROR, short(f"{source.name}: {answer.why}"))
        if answer is None:
            return PriceFailure(
                base, Reason.PRICE_UNAVAILABLE, f"{source.name}: unsupported currency"
            )
        problem = fx_problem(
            answer, run_date=run_date, tz=UTC, max_age_days=self.max_age_days, now=self._now()
        )
        if problem is not None:
            log.info("rejected %s rates for %s: %s", source.name, base, problem)
            return PriceFailure(base, Reason.PRICE_UNAVAILABLE, short(f"{source.name}: {problem}"))
        return replace(answer, rates=usable_rates(answer.rates))

    def _ask(self, name: str, key: str, fetch: Callable[[str], T]) -> T | _NoAnswer | _Spent | None:
        """One provider's answer for `key`: its result, None for "no such key", _NoAnswer,
        or _Spent when its daily budget allows no call."""
        breaker = self.breakers[name]
        if breaker.is_open:
            return _NoAnswer(f"skipped, circuit open after: {breaker.reason}")
        quota = self._quotas.get(name)

        def attempt() -> T:
            if quota is not None:
                quota.acquire()
            with self._lock:
                self.calls[name] += 1
            try:
                return fetch(key)
            except Throttled as exc:
                if quota is not None and exc.retry_after:
                    quota.pause(exc.retry_after)  # every child waits, not only this one
                raise

        try:
            result, _ = call_with_retry(
                attempt, policy=self._retry, sleep=self._sleep, what=f"{name} {key}"
            )
        except QuotaExhausted as exc:
            with self._lock:
                self.quota_exhausted[name] += 1
            return _Spent(exc.budget)
        except UnknownSymbol:
            with self._lock:
                breaker.succeeded()
            return None
        except ProviderAccessDenied as exc:
            # A refused key stays refused: no point asking again for the next symbol.
            with self._lock:
                breaker.open(str(exc))
            log.error("%s refused access; skipping it for the rest of this chunk: %s", name, exc)
            return _NoAnswer(str(exc))
        except MarketDataError as exc:
            with self._lock:
                breaker.failed(str(exc))
                opened, failures = breaker.is_open, breaker.failures
            log.warning("%s failed for %s: %s", name, key, exc)
            if opened:
                log.error("%s failed %d times in a row; skipping it", name, failures)
            return _NoAnswer(str(exc))
        with self._lock:
            breaker.succeeded()
        return result

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)
