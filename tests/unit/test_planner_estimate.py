"""Which rates the planner estimates pricing with, and when it refuses a day."""

from __future__ import annotations

from common.domain.chunking import LOCAL_CHILD
from common.platform.config import Settings
from planner.estimate import pricing_limits, timeout_for
from planner.pricing_time import Pace, estimate_pricing


def test_finnhub_paces_the_estimate_unless_only_alpha_vantage_has_a_key() -> None:
    # In AWS the planner holds no provider keys: the executors' first provider is Finnhub.
    limits = pricing_limits(Settings(finnhub_calls_per_minute=300, executor_timeout_seconds=900))
    assert limits.price == Pace("finnhub", 300)
    assert limits.fx == Pace("exchangerate", 60)
    assert limits.executor_timeout_seconds == 900
    only_av = pricing_limits(Settings(alpha_vantage_api_key="av-key-for-the-estimate"))
    assert only_av.price == Pace("alphavantage", 5)


def test_a_day_too_long_for_the_ceiling_is_refused_naming_the_rate_to_raise() -> None:
    limits = pricing_limits(
        Settings(executor_timeout_seconds=600, executor_max_timeout_seconds=3600)
    )
    fits = estimate_pricing(symbols=500, fx_bases=2, price=limits.price, fx=limits.fx)
    assert (
        timeout_for(fits, 0, LOCAL_CHILD, limits).refusal is None
    )  # 500 calls at 60/min: about 8 min
    long = estimate_pricing(symbols=3000, fx_bases=2, price=limits.price, fx=limits.fx)
    refusal = timeout_for(long, 0, LOCAL_CHILD, limits).refusal
    assert refusal is not None
    assert "EXECUTOR_MAX_TIMEOUT_SECONDS=3600" in refusal
    assert "raise FINNHUB_CALLS_PER_MINUTE to at least" in refusal
