"""How long the run's pricing will take, and so how long an executor attempt may run.

The calls come from the snapshot's demand less what `run_quotes` holds for
the run already; the rates are the providers' `*_CALLS_PER_MINUTE`, which
every child shares, so the time is the same however many children there are.
The executor attempt's timeout follows from it and the chunk size
(planner/attempt_timeout.py): at least `EXECUTOR_TIMEOUT_SECONDS` (the
job definition's), at most `EXECUTOR_MAX_TIMEOUT_SECONDS`; a day that needs
more is refused before anything is written (exit 78, saying what to raise).
"""

from __future__ import annotations

from dataclasses import dataclass

from common.adapters.marketdata.alphavantage import NAME as ALPHA_VANTAGE
from common.adapters.marketdata.exchangerate import NAME as EXCHANGE_RATE
from common.adapters.marketdata.finnhub import NAME as FINNHUB
from common.adapters.ports import DueSnapshot
from common.adapters.store.snapshot import Demand
from common.domain.chunking import ChildCost, Chunking
from common.domain.errors import EstimateTooLong
from common.platform.config import Settings
from planner.attempt_timeout import AttemptTimeout, TimeoutBounds, attempt_timeout
from planner.pricing_time import Pace, PricingEstimate, estimate_pricing


@dataclass(frozen=True)
class PricingLimits:
    """The rates the executor will keep to, and how long one of its attempts may run."""

    price: Pace
    fx: Pace
    executor_timeout_seconds: int
    executor_max_timeout_seconds: int = 4 * 3600

    @property
    def bounds(self) -> TimeoutBounds:
        return TimeoutBounds(self.executor_timeout_seconds, self.executor_max_timeout_seconds)


def pricing_limits(settings: Settings) -> PricingLimits:
    """From the settings. The first price provider is Finnhub unless only Alpha Vantage has
    a key here (in AWS the planner has no provider keys, and the executors have both)."""
    only_alpha_vantage = settings.finnhub_api_key is None and settings.alpha_vantage_api_key
    price = (
        Pace(ALPHA_VANTAGE, settings.alpha_vantage_calls_per_minute)
        if only_alpha_vantage
        else Pace(FINNHUB, settings.finnhub_calls_per_minute)
    )
    return PricingLimits(
        price=price,
        fx=Pace(EXCHANGE_RATE, settings.exchange_rate_calls_per_minute),
        executor_timeout_seconds=settings.executor_timeout_seconds,
        executor_max_timeout_seconds=max(
            settings.executor_max_timeout_seconds, settings.executor_timeout_seconds
        ),
    )


def estimate_run(
    snapshot: DueSnapshot, demand: Demand, run_id: str, limits: PricingLimits
) -> PricingEstimate:
    """The calls the run still needs per provider, and the time they take."""
    symbols = [s for s in demand.counts_by_symbol if s]
    priced, converted = snapshot.already_priced(run_id, symbols)
    return estimate_pricing(
        symbols=len(symbols) - priced,
        fx_bases=len(demand.fx_bases - converted),
        price=limits.price,
        fx=limits.fx,
    )


def largest_chunk(chunking: Chunking) -> int:
    return max((c.items for c in chunking.chunks), default=0)


def timeout_for(
    estimate: PricingEstimate, chunk_plans: int, cost: ChildCost, limits: PricingLimits
) -> AttemptTimeout:
    """The executor attempt's timeout for this run (`refusal` set when it cannot fit)."""
    return attempt_timeout(estimate, chunk_plans, cost, limits.bounds)


def checked_timeout(
    estimate: PricingEstimate, chunk_plans: int, cost: ChildCost, limits: PricingLimits
) -> int:
    """The timeout to submit; raises EstimateTooLong (exit 78) when the day cannot fit."""
    found = timeout_for(estimate, chunk_plans, cost, limits)
    if found.refusal is not None:
        raise EstimateTooLong(found.refusal)
    return found.seconds
