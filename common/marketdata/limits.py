"""Keeping to a provider's limits: a token-bucket rate limiter and a circuit breaker.

Both take the clock and the sleep function as arguments so that tests run a
minute of provider time in microseconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from common.marketdata.transport import Clock

Sleep = Callable[[float], None]


class RateLimiter:
    """A token bucket: `calls_per_minute` tokens an even minute, at most `burst` saved up.

    `acquire` sleeps until a token is there. With burst b, any 60-second window
    sees at most calls_per_minute + b - 1 calls; the default burst of 1 keeps
    to the provider's per-minute limit however the provider counts its window,
    so a throttled provider slows us down instead of answering 429.
    """

    def __init__(
        self,
        calls_per_minute: int,
        *,
        burst: int = 1,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if calls_per_minute <= 0 or burst <= 0:
            raise ValueError("calls_per_minute and burst must be positive")
        self.calls_per_minute = calls_per_minute
        self._interval = 60.0 / calls_per_minute
        self._capacity = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until there is one. Returns the seconds slept."""
        with self._lock:
            now = self._clock()
            earned = (now - self._updated) / self._interval
            self._tokens = min(self._capacity, self._tokens + earned)
            self._updated = now
            self._tokens -= 1.0
            # A negative balance is the wait this caller owes; holding the lock
            # while sleeping keeps callers in order.
            wait = -self._tokens * self._interval if self._tokens < 0 else 0.0
            if wait > 0:
                self._sleep(wait)
            return wait


class CircuitBreaker:
    """Opens after `threshold` consecutive failures and stays open for the breaker's life.

    One breaker per provider per price chain, and one chain per executor chunk,
    so "open" means: skip this provider for the rest of the chunk.
    """

    def __init__(self, threshold: int) -> None:
        if threshold <= 0:
            raise ValueError("threshold must be positive")
        self.threshold = threshold
        self.failures = 0
        self.is_open = False
        self.reason = ""

    def succeeded(self) -> None:
        """The provider answered (a quote, or "no such symbol")."""
        if not self.is_open:
            self.failures = 0

    def failed(self, reason: str) -> None:
        """The provider did not answer usably, after retries."""
        self.failures += 1
        if self.failures >= self.threshold:
            self.open(reason)

    def open(self, reason: str) -> None:
        """Stop using the provider now (a refused key will not get better)."""
        self.is_open = True
        self.reason = reason
