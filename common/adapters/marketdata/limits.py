"""Keeping to a provider's limits: its key's shared quota, and a circuit breaker per chunk.

`ProviderQuota` is one process's side of a limit that every process calling
the provider with the same key shares through a `QuotaStore` (PostgreSQL in
the executor): call slots `pacing.spacing(L)` apart for the per-minute
limit, a daily count for the budget, and a pause when the provider says
Retry-After. Both take the clock and the sleep function as arguments so
that tests run a minute of provider time in microseconds.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from common.adapters.marketdata.ports import QuotaStore
from common.domain.errors import QuotaExhausted
from common.domain.pacing import block_size, is_late, spacing

if TYPE_CHECKING:
    from common.adapters.marketdata.transport import Clock

Sleep = Callable[[float], None]
_T = TypeVar("_T")


def key_fingerprint(api_key: str) -> str:
    """Who a limit belongs to: the first 16 hex digits of the key's SHA-256, never the key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


class ProviderQuota:
    """One provider's calls from this process, paced and counted with every other process.

    `acquire` counts the call against the daily budget (when there is one),
    then waits for a call slot. Slots are leased from the store a few at a
    time: the next lease doubles when every slot of the last one was used, up
    to about a second's worth of calls (`pacing.block_size`), and halves when
    one comes too late to be used. A fast provider then costs one round trip per block,
    and a child slower than the provider's pace does not take slots the
    others could use. A slot found late is thrown away and another taken: a
    call is never sent late, so a caller that was held up cannot add to the
    next callers' pace.
    """

    def __init__(
        self,
        store: QuotaStore,
        provider: str,
        key_id: str,
        *,
        calls_per_minute: int,
        calls_per_day: int | None = None,
        clock: Clock = time.monotonic,  # any clock that does not jump: waits are measured on it
        sleep: Sleep = time.sleep,
    ) -> None:
        self.provider = provider
        self.calls_per_minute = calls_per_minute
        self.calls_per_day = calls_per_day
        self._store = store
        self._key_id = key_id
        self._spacing = spacing(calls_per_minute)
        self._block = block_size(calls_per_minute)
        self._lease_size = 1  # slots the next lease asks for: 1 up to _block
        self._wasted = True  # a slot of the last lease came too late (no lease yet: start small)
        self._clock = clock
        self._sleep = sleep
        self._offset = -math.inf  # the store's clock minus ours, at least (see _lease)
        self._slots: deque[float] = deque()  # leased, not handed out yet (the store's clock)
        self._held = 0  # handed out, their callers still waiting for them
        self._spent = False
        self._cond = threading.Condition()
        self.waited = 0.0  # seconds callers slept for their slots (summed over threads)
        self.round_trips = 0  # leases, pauses and budget counts sent to the store
        self.store_seconds = 0.0  # time those took
        self.thrown_away = 0  # slots found late

    def acquire(self) -> None:
        """Wait for this call's slot. Raises `QuotaExhausted` when the day's budget is spent."""
        if self.calls_per_day is not None:
            self._count_against_budget(self.calls_per_day)
        while True:
            slot = self._take_slot()
            wait = slot - self._store_now()
            if wait > 0:
                self._sleep(wait)
            with self._cond:
                self._held -= 1
                self.waited += max(0.0, wait)
                self._cond.notify_all()
                if not is_late(slot, self._store_now()):
                    return
                self._thrown()

    def pause(self, seconds: float) -> None:
        """The provider said Retry-After: hold every process's calls back for `seconds`."""
        self._timed(lambda: self._store.pause(self.provider, self._key_id, seconds))
        with self._cond:
            until = self._store_now() + seconds
            # Slots leased before the pause would land inside it.
            kept = deque(s for s in self._slots if s >= until)
            self.thrown_away += len(self._slots) - len(kept)
            self._slots = kept

    def _take_slot(self) -> float:
        with self._cond:
            while True:
                now = self._store_now()
                while self._slots and is_late(self._slots[0], now):
                    self._slots.popleft()
                    self._thrown()
                if self._slots:
                    self._held += 1
                    return self._slots.popleft()
                room = self._block - self._held
                if room > 0:
                    if not self._wasted:  # every slot of the last lease was used: ask for more
                        self._lease_size = min(self._block, 2 * self._lease_size)
                    self._wasted = False
                    self._lease(min(room, self._lease_size))
                else:
                    self._cond.wait()

    def _thrown(self) -> None:
        """A slot came too late to use: this process takes fewer at a time (under the lock)."""
        self.thrown_away += 1
        self._lease_size = max(1, self._lease_size // 2)
        self._wasted = True

    def _lease(self, count: int) -> None:
        """Lease `count` slots (under the lock: the other callers would only wait for them)."""
        lease, store_now = self._timed(
            lambda: self._store.lease(self.provider, self._key_id, count, self._spacing)
        )
        # The store read its clock before we read ours, so store_now - ours is a lower
        # bound of the offset, and the highest such bound the best. Waiting on it, a call
        # can be late by the uncertainty left (the quickest round trip yet), never early.
        self._offset = max(self._offset, store_now - self._clock())
        self._slots.extend(lease.slots)

    def _count_against_budget(self, budget: int) -> None:
        if not self._spent:
            counted = self._timed(lambda: self._store.spend(self.provider, self._key_id, budget))
            self._spent = not counted
        if self._spent:
            # Spent for today: this process asks no more (a chunk does not outlive a day).
            raise QuotaExhausted(self.provider, "*", budget)

    def _timed(self, call: Callable[[], _T]) -> _T:
        started = time.perf_counter()
        try:
            return call()
        finally:
            elapsed = time.perf_counter() - started
            with self._cond:
                self.round_trips += 1
                self.store_seconds += elapsed

    def _store_now(self) -> float:
        """The store's clock now, as far as this process can tell (never ahead of it)."""
        return self._clock() + self._offset


def pacing_timings(quotas: Iterable[ProviderQuota]) -> dict[str, int]:
    """What keeping to the shared quotas cost: round trips to the store and their time,
    the time calls waited for their slots (summed over threads), and the slots thrown away
    because they came too late to use. All 0 for no quotas (nothing was fetched)."""
    quotas = list(quotas)
    return {
        "quota_round_trips": sum(q.round_trips for q in quotas),
        "quota_ms": round(sum(q.store_seconds for q in quotas) * 1000),
        "quota_wait_ms": round(sum(q.waited for q in quotas) * 1000),
        "quota_slots_thrown_away": sum(q.thrown_away for q in quotas),
    }


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
