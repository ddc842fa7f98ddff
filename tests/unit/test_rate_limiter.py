"""The token bucket on a fake clock: never more calls in a minute than the provider allows."""

from __future__ import annotations

import pytest

from common.marketdata.limits import CircuitBreaker, RateLimiter
from tests.marketdata_fakes import FakeClock


def call_times(limiter: RateLimiter, clock: FakeClock, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        limiter.acquire()
        times.append(clock())
    return times


@pytest.mark.parametrize("per_minute", [1, 5, 60])
def test_no_sixty_second_window_holds_more_calls_than_the_limit(per_minute: int) -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute, clock=clock, sleep=clock.sleep)
    times = call_times(limiter, clock, 4 * per_minute)
    for i in range(len(times) - per_minute):
        assert times[i + per_minute] - times[i] >= 60


def test_a_burst_spends_saved_tokens_and_then_paces() -> None:
    clock = FakeClock()
    limiter = RateLimiter(6, burst=3, clock=clock, sleep=clock.sleep)
    clock.sleep(60)  # idle long enough to fill the bucket
    clock.slept.clear()
    call_times(limiter, clock, 5)
    assert clock.slept == [10.0, 10.0]


def test_an_idle_limiter_lets_the_next_call_through_at_once() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    assert limiter.acquire() == 0
    clock.sleep(30)
    assert limiter.acquire() == 0


def test_a_breaker_opens_on_the_threshold_and_stays_open() -> None:
    breaker = CircuitBreaker(2)
    breaker.failed("one")
    breaker.succeeded()
    breaker.failed("two")
    assert not breaker.is_open
    breaker.failed("three")
    breaker.succeeded()
    assert breaker.is_open and breaker.reason == "three"
