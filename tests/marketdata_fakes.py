"""Fakes for market-data tests: a clock that only moves when slept on, and scripted sources."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from common.marketdata.quotes import FxRates, Quote

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
