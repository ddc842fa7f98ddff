"""What a provider would see of our pace, from the arrival times of one key's calls.

`most_in_a_minute` is the provider's own rule (no more than L calls in any
rolling 60 seconds). A test shorter than a minute cannot break that rule
with fewer than L + 1 calls, so `ahead_of_pace` checks the same rate over
every stretch of calls, long or short: calls i and j (j > i) may not arrive
closer than (j - i) * 60 / L seconds, give or take the jitter the limiter's
margin is there for. A burst, or children each keeping their own pace, shows
at once.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

# Scheduling and network jitter allowed between any two arrivals: the limiter spaces slots
# a second a minute wider than the limit, and sends a call at most 0.25 s after its slot.
JITTER_SECONDS = 0.5


def most_in_a_minute(arrivals: Sequence[float]) -> int:
    """The most arrivals in any rolling 60 s window (t - 60, t], as the stub counts them."""
    times = sorted(arrivals)
    return max((i + 1 - bisect.bisect_right(times, t - 60) for i, t in enumerate(times)), default=0)


def ahead_of_pace(arrivals: Sequence[float], per_minute: int) -> float:
    """The most seconds any stretch of calls ran ahead of `per_minute` (0 when never)."""
    times = sorted(arrivals)
    gap = 60 / per_minute
    return max(
        (
            (j - i) * gap - (times[j] - times[i])
            for i in range(len(times))
            for j in range(i + 1, len(times))
        ),
        default=0.0,
    )
