"""Keeping every child together under a provider's per-minute limit: call slots (GCRA).

A provider refuses a call when more than L calls of the same API key arrived
in the last rolling 60 seconds (Finnhub does; so does the stub). A token
bucket leased out in blocks lets a block go out in a burst, so the shared
limiter hands out *slots* instead: instants `spacing(L)` apart, one call's
turn each (the generic cell rate algorithm's "theoretical arrival time").

    lease k slots:  start = max(now, next_free, paused_until)
                    slots = start, start + s, ..., start + (k-1)s
                    next_free = start + k s          (atomically, for everyone)

A call waits for its slot and is sent at once; a slot found more than
`LATE_GRACE_SECONDS` past its time (the child was paused, starved or killed)
is thrown away, never sent late. So any two calls L slots apart arrive at
least L s - LATE_GRACE = 60 + SAFETY - LATE_GRACE seconds apart: more than a
minute, by the 0.75 s left for the network and the scheduler. No 60-second
window can hold L + 1 calls, however many children share the key, and a slot
leased by a child that died is simply never used.

Pure arithmetic on seconds since the epoch; the database holds the shared
state and applies `lease` in one UPDATE (common/adapters/store/quotas.py).
"""

from __future__ import annotations

from dataclasses import dataclass

SAFETY_SECONDS_PER_MINUTE = 1.0  # slots of L calls span 61 s, not 60
LATE_GRACE_SECONDS = 0.25  # a slot may be used this long after its time, never later
MAX_BLOCK = 200  # slots a child holds at once, at most (a second's worth at 12,000/min)


def spacing(calls_per_minute: int) -> float:
    """Seconds between two slots: a little over 60 / L (see SAFETY_SECONDS_PER_MINUTE)."""
    if calls_per_minute <= 0:
        raise ValueError("calls_per_minute must be positive")
    return (60.0 + SAFETY_SECONDS_PER_MINUTE) / calls_per_minute


def block_size(calls_per_minute: int) -> int:
    """Slots one child may hold unused at once: about a second's worth, 1 to MAX_BLOCK.

    Big enough that a fast provider costs one database round trip per block,
    small enough that no child sits on slots the others could use, and a
    killed child wastes at most about a second of the provider's time.
    """
    if calls_per_minute <= 0:
        raise ValueError("calls_per_minute must be positive")
    return max(1, min(MAX_BLOCK, calls_per_minute // 60))


@dataclass(frozen=True, slots=True)
class Lease:
    """`count` slots from `first` on, `spacing` seconds apart (the store's clock)."""

    first: float
    spacing: float
    count: int

    @property
    def slots(self) -> list[float]:
        return [self.first + i * self.spacing for i in range(self.count)]

    @property
    def end(self) -> float:
        """The first instant after the lease: the next free slot."""
        return self.first + self.count * self.spacing


def lease(
    *, now: float, next_free: float, paused_until: float | None, count: int, spacing: float
) -> Lease:
    """The next `count` slots: from the first free instant that is not in the past or a pause.

    An idle provider's `next_free` lies in the past and does not count: time
    nobody used is not saved up for a burst later.
    """
    if count <= 0 or spacing <= 0:
        raise ValueError("count and spacing must be positive")
    start = max(now, next_free, paused_until if paused_until is not None else now)
    return Lease(first=start, spacing=spacing, count=count)


def is_late(slot: float, now: float, grace: float = LATE_GRACE_SECONDS) -> bool:
    """Whether a call at `now` would be too late for `slot`: then the slot is thrown away."""
    return now > slot + grace
