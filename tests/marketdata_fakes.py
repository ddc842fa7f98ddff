"""Fakes for market-data tests: a clock that only moves when slept on, scripted sources,
and a quota store in memory."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

from common.adapters.marketdata.chain import PriceChain
from common.adapters.marketdata.quotes import FxRates, PriceFailure, Quote
from common.domain.pacing import Lease, lease

NEW_YORK = ZoneInfo("America/New_York")
RUN_DATE = date(2026, 11, 27)  # a Friday
NOW = datetime(2026, 11, 27, 14, 35, tzinfo=UTC)  # 09:35 in New York, when the executor runs


class FakeClock:
    """`clock()` is seconds since the epoch; `sleep(s)` moves it on by s without waiting."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start.timestamp()
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds

    @property
    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


Answer = Quote | None | Exception


class FakePriceSource:
    """A `PriceSource` that answers from a script: per symbol, one answer or a list in turn.

    An Exception in the script is raised; the last answer of a list repeats.
    Symbols not in the script are unknown (None).
    """

    def __init__(self, name: str, script: dict[str, Answer | list[Answer]] | None = None) -> None:
        self.name = name
        self.script = dict(script or {})
        self.calls: Counter[str] = Counter()

    def fetch(self, symbol: str) -> Quote | None:
        self.calls[symbol] += 1
        answer = self.script.get(symbol)
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeFxSource:
    """An `FxSource` that answers every base from a script and caches nothing unless told."""

    def __init__(self, script: dict[str, FxRates | Exception], name: str = "fakefx") -> None:
        self.name = name
        self.script = script
        self.cache: dict[str, FxRates] = {}
        self.calls: Counter[str] = Counter()

    def cached(self, base: str) -> FxRates | None:
        return self.cache.get(base)

    def fetch(self, base: str) -> FxRates:
        self.calls[base] += 1
        answer = self.script[base]
        if isinstance(answer, Exception):
            raise answer
        return answer


def quote(provider: str, symbol: str, price: str = "100.25", when: datetime = NOW) -> Quote:
    return Quote(provider=provider, symbol=symbol, price=Decimal(price), time=when)


class MemoryQuotas:
    """A `QuotaStore` for one process, on the given clock: the slot arithmetic the database
    applies (`pacing.lease`), without a database, so a fake clock can drive it."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._next: dict[tuple[str, str], float] = {}
        self._paused: dict[tuple[str, str], float] = {}
        self.daily: Counter[tuple[str, str, date]] = Counter()
        self.leases: list[Lease] = []
        self._lock = threading.Lock()

    def lease(self, provider: str, key_id: str, count: int, spacing: float) -> tuple[Lease, float]:
        with self._lock:
            now = self._clock()
            got = lease(
                now=now,
                next_free=self._next.get((provider, key_id), now),
                paused_until=self._paused.get((provider, key_id)),
                count=count,
                spacing=spacing,
            )
            self._next[(provider, key_id)] = got.end
            self.leases.append(got)
            return got, now

    def pause(self, provider: str, key_id: str, seconds: float) -> None:
        with self._lock:
            until = self._clock() + seconds
            self._paused[(provider, key_id)] = max(until, self._paused.get((provider, key_id), 0))

    def spend(self, provider: str, key_id: str, budget: int, day: date | None = None) -> bool:
        with self._lock:
            day = day or datetime.fromtimestamp(self._clock(), UTC).date()
            if self.daily[(provider, key_id, day)] >= budget:
                return False
            self.daily[(provider, key_id, day)] += 1
            return True

    def close(self) -> None:
        return


def price_each(
    chain: PriceChain, symbols: Iterable[str], run_date: date, tz: tzinfo
) -> dict[str, Quote | PriceFailure]:
    """`chain.price` for each distinct symbol, once each, in the order first given (as the
    executor's QuoteBook asks)."""
    return {symbol: chain.price(symbol, run_date, tz) for symbol in dict.fromkeys(symbols)}
