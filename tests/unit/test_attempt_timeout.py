"""An executor attempt's timeout from the run's estimate: bounded, with margin, or refused."""

from __future__ import annotations

from common.domain.chunking import ChildCost
from planner.attempt_timeout import TimeoutBounds, attempt_timeout
from planner.pricing_time import Pace, estimate_pricing

CHILD = ChildCost("a test child", 60.0, 1_000, 100_000)
PRICE, FX = Pace("finnhub", 60), Pace("exchangerate", 60)


def test_a_small_day_gets_the_job_definitions_timeout() -> None:
    estimate = estimate_pricing(symbols=10, fx_bases=1, price=PRICE, fx=FX)
    found = attempt_timeout(estimate, 500, CHILD, TimeoutBounds(3600, 14400))
    assert (found.seconds, found.refusal) == (3600, None)


def test_a_long_day_gets_its_need_times_the_margin() -> None:
    # 60 s start + 3,050 s pricing (calls 61/60 s apart: pacing.spacing) + 61 s FX
    # + 10 s buying = 3,181 s; x1.5 = 4,772 s.
    estimate = estimate_pricing(symbols=3000, fx_bases=60, price=PRICE, fx=FX)
    found = attempt_timeout(estimate, 10_000, CHILD, TimeoutBounds(3600, 14400))
    assert found.seconds == 4772 and found.refusal is None


def test_past_the_ceiling_names_the_slowest_providers_rate_and_what_would_fit() -> None:
    estimate = estimate_pricing(symbols=20_000, fx_bases=2, price=PRICE, fx=FX)
    found = attempt_timeout(estimate, 1_000, CHILD, TimeoutBounds(3600, 14400))
    assert found.refusal is not None
    # (14,400 / 1.5) - 60 start - 1 s buying - 2 s FX = ~9,537 s for 20,000 calls 61/60 s
    # apart: 128/min.
    assert "raise FINNHUB_CALLS_PER_MINUTE to at least 128 (now 60)" in found.refusal
    again = estimate_pricing(symbols=20_000, fx_bases=2, price=Pace("finnhub", 128), fx=FX)
    assert attempt_timeout(again, 1_000, CHILD, TimeoutBounds(3600, 14400)).refusal is None


def test_when_buying_a_chunk_is_what_does_not_fit_the_chunk_count_is_named() -> None:
    estimate = estimate_pricing(symbols=0, fx_bases=0, price=PRICE, fx=FX)
    found = attempt_timeout(estimate, 100_000_000, CHILD, TimeoutBounds(3600, 14400))
    assert found.refusal is not None and "raise the chunk count" in found.refusal


def test_a_ceiling_below_a_childs_start_up_names_the_ceiling() -> None:
    estimate = estimate_pricing(symbols=1, fx_bases=0, price=PRICE, fx=FX)
    found = attempt_timeout(estimate, 1, CHILD, TimeoutBounds(60, 60))
    assert found.refusal is not None and "raise EXECUTOR_MAX_TIMEOUT_SECONDS" in found.refusal
