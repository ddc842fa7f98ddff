"""Per-key limits for the stub market server, counted the way the providers count them.

A provider counts the calls of each API key and refuses those past its plan's
limits (Finnhub answers 429 past its per-minute limit,
https://finnhub.io/docs/api/rate-limit; Alpha Vantage's free tier allows 25
requests a day, https://www.alphavantage.co/support/#api-key). The stub
counts the strictest way a per-minute limit can be counted: at most
`per_minute` calls in any rolling 60 seconds, and at most `per_day` in a UTC
day. A call past either is refused and not counted; the Retry-After it
carries is the time until the oldest call in the window leaves it (or until
the next UTC midnight for the daily limit).

Configured from the same variables worthy-batch reads (`*_CALLS_PER_MINUTE`,
`*_CALLS_PER_DAY`), so the stub enforces what the batch is told to keep to.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from devkit.stubs.market_faults import ALPHA_VANTAGE, EXCHANGE_RATE, FINNHUB

WINDOW_SECONDS = 60.0
MINUTE = "minute"
DAY = "day"
# Each provider's variables, as worthy-batch names them.
VARIABLE_PREFIX = {
    FINNHUB: "FINNHUB",
    ALPHA_VANTAGE: "ALPHA_VANTAGE",
    EXCHANGE_RATE: "EXCHANGE_RATE",
}


@dataclass(frozen=True)
class KeyLimit:
    """One provider's limits per key; None means no limit."""

    per_minute: int | None = None
    per_day: int | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a call was refused (`MINUTE` or `DAY`) and when to come back, in whole seconds."""

    kind: str
    retry_after: int


class KeyLimits:
    """Calls admitted per (provider, key): the last minute's times and each UTC day's count."""

    def __init__(self, clock: Callable[[], float], limits: Mapping[str, KeyLimit] | None = None):
        self._clock = clock
        self._limits = dict(limits or {})
        self._recent: dict[tuple[str, str], deque[float]] = {}
        self._daily: Counter[tuple[str, str, date]] = Counter()
        self._lock = threading.Lock()

    def set(self, provider: str, limit: KeyLimit) -> None:
        with self._lock:
            self._limits[provider] = limit

    def limit(self, provider: str) -> KeyLimit:
        return self._limits.get(provider, KeyLimit())

    def admit(self, provider: str, key: str) -> Refusal | None:
        """Count this call, or say why the provider would refuse it (and count nothing)."""
        with self._lock:
            limit = self._limits.get(provider, KeyLimit())
            now = self._clock()
            today = datetime.fromtimestamp(now, UTC).date()
            recent = self._recent.setdefault((provider, key), deque())
            while recent and recent[0] <= now - WINDOW_SECONDS:
                recent.popleft()
            if limit.per_day is not None and self._daily[(provider, key, today)] >= limit.per_day:
                midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC)
                return Refusal(DAY, math.ceil(midnight.timestamp() - now))
            if limit.per_minute is not None and len(recent) >= limit.per_minute:
                return Refusal(MINUTE, max(1, math.ceil(recent[0] + WINDOW_SECONDS - now)))
            recent.append(now)
            self._daily[(provider, key, today)] += 1
            return None


def limits_from_environment(env: Mapping[str, str]) -> dict[str, KeyLimit]:
    """The limits the variables in `env` set (`FINNHUB_CALLS_PER_MINUTE=60`, ...); a variable
    unset, empty or `unlimited` sets none."""

    def number(name: str) -> int | None:
        value = env.get(name, "").strip()
        return None if value.lower() in ("", "unlimited") else int(value)

    limits = {}
    for provider, prefix in VARIABLE_PREFIX.items():
        limit = KeyLimit(number(f"{prefix}_CALLS_PER_MINUTE"), number(f"{prefix}_CALLS_PER_DAY"))
        if limit != KeyLimit():
            limits[provider] = limit
    return limits
