"""How long an executor attempt may run, from the run's estimate (pure).

An attempt must outlast the worst child: it starts (`ChildCost.start_seconds`),
may wait for the whole run's pricing (every child shares each provider's
per-key rate, so pricing does not shrink with more children), and buys its
own chunk (`plans / ChildCost.plans_per_second`). That time, times a margin
for what the estimate does not know (retries, a slow database), is the
attempt's timeout, never below the job definition's (`floor`) and never above
`ceiling`. AWS Batch terminates an attempt that runs past its timeout and
does not retry it (job_timeouts.html), so a day that cannot fit under the
ceiling is refused before anything is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from common.domain.chunking import ChildCost
from common.domain.pacing import SAFETY_SECONDS_PER_MINUTE
from planner.pricing_time import PricingEstimate, ProviderWork, about

MIN_ATTEMPT_SECONDS = 60  # Batch refuses a shorter attemptDurationSeconds (job_timeouts.html)
DEFAULT_MARGIN = 1.5


@dataclass(frozen=True, slots=True)
class TimeoutBounds:
    floor: int  # EXECUTOR_TIMEOUT_SECONDS: the job definition's timeout
    ceiling: int  # EXECUTOR_MAX_TIMEOUT_SECONDS
    margin: float = DEFAULT_MARGIN


@dataclass(frozen=True, slots=True)
class AttemptTimeout:
    """The timeout to submit, or (`refusal` set) why the day cannot fit."""

    seconds: int
    needed: float  # what the worst child needs, before the margin
    refusal: str | None = None


def attempt_timeout(
    estimate: PricingEstimate, chunk_plans: int, cost: ChildCost, bounds: TimeoutBounds
) -> AttemptTimeout:
    """The executor attempt's timeout for chunks of at most `chunk_plans` plans."""
    buying = chunk_plans / cost.plans_per_second
    needed = cost.start_seconds + estimate.seconds + buying
    seconds = max(bounds.floor, MIN_ATTEMPT_SECONDS, math.ceil(needed * bounds.margin))
    if seconds <= bounds.ceiling:
        return AttemptTimeout(seconds, needed)
    budget = bounds.ceiling / bounds.margin - cost.start_seconds  # what pricing + buying may take
    why = (
        f"an executor attempt would need {about(needed * bounds.margin)} "
        f"({_parts(estimate, buying, chunk_plans)}, x{bounds.margin:g} margin), more than "
        f"EXECUTOR_MAX_TIMEOUT_SECONDS={bounds.ceiling} ({about(bounds.ceiling)}): "
    )
    return AttemptTimeout(seconds, needed, why + _remedy(estimate, buying, budget))


def _parts(estimate: PricingEstimate, buying: float, chunk_plans: int) -> str:
    pricing = f"pricing {estimate}" if estimate.calls else "no pricing"
    return f"{pricing}; buying {chunk_plans:,} plan(s) a chunk: {about(buying)}"


def _remedy(estimate: PricingEstimate, buying: float, budget: float) -> str:
    """Which rate (or the chunk count) to raise, and to what."""
    if budget <= 0:
        return "raise EXECUTOR_MAX_TIMEOUT_SECONDS: it cannot hold a child's start-up"
    if buying >= budget or not estimate.calls:
        return "raise the chunk count (a smaller CHUNK_SIZE, or a larger MAX_CHILDREN)"
    slowest = max((w for w in estimate.work if w.calls), key=lambda w: w.seconds)
    others = estimate.seconds - slowest.seconds
    room = budget - buying - others
    if room <= 0:
        return "raise every provider's rate (*_CALLS_PER_MINUTE) or the chunk count"
    # A provider's calls are spaced (60 + safety) / rate seconds apart (pacing.spacing).
    rate = math.ceil(slowest.calls * (60 + SAFETY_SECONDS_PER_MINUTE) / room)
    return (
        f"raise {_variable(slowest)} to at least {rate:,} "
        f"(now {slowest.pace.calls_per_minute:,}), or EXECUTOR_MAX_TIMEOUT_SECONDS"
    )


def _variable(work: ProviderWork) -> str:
    names = {"finnhub": "FINNHUB", "alphavantage": "ALPHA_VANTAGE", "exchangerate": "EXCHANGE_RATE"}
    prefix = names.get(work.pace.provider, work.pace.provider.upper())
    return f"{prefix}_CALLS_PER_MINUTE"
