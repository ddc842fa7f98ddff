"""How long the run's pricing will take, said before it starts (planner log and dry run).

The calls come from the snapshot's demand less what `run_quotes` holds for
the run already; the rates are the providers' `*_CALLS_PER_MINUTE`, which
every child shares, so the time is the same however many children there are.
When it is more than an executor attempt may run (`EXECUTOR_TIMEOUT_SECONDS`,
the executor job definition's timeout), the children would be stopped
before they finish pricing: say so, and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.config import Settings
from common.domain.pricing_time import Pace, PricingEstimate, about, estimate_pricing
from common.marketdata.alphavantage import NAME as ALPHA_VANTAGE
from common.marketdata.exchangerate import NAME as EXCHANGE_RATE
from common.marketdata.finnhub import NAME as FINNHUB
from common.store.snapshot import Demand, Snapshot


@dataclass(frozen=True)
class PricingLimits:
    """The rates the executor will keep to, and how long one of its attempts may run."""

    price: Pace
    fx: Pace
    executor_timeout_seconds: int


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
    )


def estimate_run(
    snapshot: Snapshot, demand: Demand, run_id: str, limits: PricingLimits
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


def too_slow(estimate: PricingEstimate, limits: PricingLimits) -> str | None:
    """The warning when pricing would outlast an executor attempt; None when it fits."""
    timeout = limits.executor_timeout_seconds
    if not estimate.exceeds(timeout):
        return None
    return (
        f"pricing needs {about(estimate.seconds)}, longer than an executor attempt may run "
        f"({about(timeout)}, EXECUTOR_TIMEOUT_SECONDS={timeout}): children would be stopped "
        "before they finish; raise the provider plan's rate (*_CALLS_PER_MINUTE) or the "
        'executor job definition\'s timeout (README "Choosing provider plans and CHUNK_SIZE")'
    )
