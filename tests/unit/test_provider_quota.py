"""A provider's quota on a fake clock: every process's calls paced together, budgets counted,
late slots thrown away, Retry-After shared; and the circuit breaker."""

from __future__ import annotations

import pytest

from common.adapters.marketdata.limits import CircuitBreaker, ProviderQuota, key_fingerprint
from common.domain.errors import QuotaExhausted
from common.domain.pacing import LATE_GRACE_SECONDS, Lease, spacing
from tests.marketdata_fakes import FakeClock, MemoryQuotas


def quota(
    store: MemoryQuotas, clock: FakeClock, per_minute: int, **kwargs: object
) -> ProviderQuota:
    return ProviderQuota(
        store,
        "finnhub",
        "0123456789abcdef",
        calls_per_minute=per_minute,
        clock=clock,
        sleep=clock.sleep,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("per_minute", [1, 5, 60])
def test_two_processes_with_one_key_together_keep_to_its_limit(per_minute: int) -> None:
    clock = FakeClock()
    store = MemoryQuotas(clock)
    first, second = quota(store, clock, per_minute), quota(store, clock, per_minute)
    times = []
    for i in range(4 * per_minute):
        (first if i % 3 else second).acquire()
        times.append(clock())
    for i in range(len(times) - per_minute):
        assert times[i + per_minute] - times[i] > 60


def test_an_idle_provider_lets_the_next_call_through_at_once() -> None:
    clock = FakeClock()
    limited = quota(MemoryQuotas(clock), clock, 5)
    limited.acquire()
    clock.sleep(30)
    clock.slept.clear()
    limited.acquire()
    assert clock.slept == []


def test_waits_are_counted_on_the_stores_clock_whatever_ours_says() -> None:
    clock = FakeClock()
    store = MemoryQuotas(lambda: clock() + 100)  # the database's clock runs 100 s ahead
    limited = quota(store, clock, 60)
    limited.acquire()
    limited.acquire()
    assert clock.slept == [pytest.approx(spacing(60))]
    assert limited.waited == pytest.approx(spacing(60))


def test_a_slot_found_late_is_thrown_away_and_never_used() -> None:
    clock = FakeClock()
    store = MemoryQuotas(clock)
    overslept: list[float] = []

    def sleep(seconds: float) -> None:  # the process is held up once, past the grace
        clock.sleep(seconds + (0 if overslept else LATE_GRACE_SECONDS + 1))
        overslept.append(seconds)

    limited = ProviderQuota(store, "finnhub", "k", calls_per_minute=6, clock=clock, sleep=sleep)
    limited.acquire()
    start = clock()
    limited.acquire()
    assert limited.thrown_away == 1
    late_slot = store.leases[1].first
    assert clock() >= store.leases[2].first > late_slot  # sent on the next slot, not the late one
    assert clock() - start < 2 * spacing(6) + LATE_GRACE_SECONDS + 1


def test_a_daily_budget_allows_its_calls_then_refuses_without_asking_again() -> None:
    clock = FakeClock()
    store = MemoryQuotas(clock)
    limited = quota(store, clock, 600, calls_per_day=2)
    limited.acquire()
    limited.acquire()
    with pytest.raises(QuotaExhausted) as refused:
        limited.acquire()
    trips = limited.round_trips
    with pytest.raises(QuotaExhausted):
        limited.acquire()
    assert refused.value.budget == 2 and refused.value.provider == "finnhub"
    assert limited.round_trips == trips
    assert sum(store.daily.values()) == 2


def test_a_budget_is_shared_by_every_process_with_the_key() -> None:
    clock = FakeClock()
    store = MemoryQuotas(clock)
    first, second = (quota(store, clock, 600, calls_per_day=3) for _ in range(2))
    first.acquire()
    second.acquire()
    first.acquire()
    with pytest.raises(QuotaExhausted):
        second.acquire()


def test_a_pause_holds_the_next_call_back_until_it_ends() -> None:
    clock = FakeClock()
    store = MemoryQuotas(clock)
    limited = quota(store, clock, 60)
    limited.acquire()
    limited.pause(10)
    start = clock()
    limited.acquire()
    assert clock() >= start + 10


def test_a_fingerprint_names_a_key_without_holding_it() -> None:
    fingerprint = key_fingerprint("my-secret-api-key")
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert "secret" not in fingerprint
    assert fingerprint != key_fingerprint("another-api-key")


def test_a_breaker_opens_on_the_threshold_and_stays_open() -> None:
    breaker = CircuitBreaker(2)
    breaker.failed("one")
    breaker.succeeded()
    breaker.failed("two")
    assert not breaker.is_open
    breaker.failed("three")
    breaker.succeeded()
    assert breaker.is_open and breaker.reason == "three"


class SlowToAnswer(MemoryQuotas):
    """A store whose leases wait `delay` seconds (a queue for the row lock) before it reads
    its clock, so its answer tells less about when "now" was than the round trip suggests."""

    def __init__(self, clock: FakeClock, delay: float) -> None:
        super().__init__(clock)
        self._fake = clock
        self._delay = delay

    def lease(self, provider: str, key_id: str, count: int, spacing: float) -> tuple[Lease, float]:
        self._fake.sleep(self._delay)
        return super().lease(provider, key_id, count, spacing)


def test_a_slow_round_trip_can_make_a_call_late_but_never_early() -> None:
    clock = FakeClock()
    store = SlowToAnswer(clock, delay=1.0)
    limited = quota(store, clock, 60)
    for _ in range(5):
        limited.acquire()
        assert clock() >= store.leases[-1].first  # never before its slot
    assert limited.thrown_away == 0


def test_a_caller_that_keeps_up_leases_a_seconds_worth_at_a_time() -> None:
    clock = FakeClock()
    store = MemoryQuotas(clock)
    limited = quota(store, clock, 600)  # blocks of 10
    for _ in range(100):
        limited.acquire()
    assert [lease.count for lease in store.leases[:5]] == [1, 2, 4, 8, 10]
    assert limited.round_trips <= 14 and limited.thrown_away == 0


def test_a_caller_slower_than_the_pace_takes_few_slots_and_wastes_few() -> None:
    clock = FakeClock()
    store = MemoryQuotas(clock)
    limited = quota(store, clock, 600)  # a slot every 0.1 s; this caller needs 0.5 s a call
    for _ in range(50):
        limited.acquire()
        clock.sleep(0.5)
    leased = sum(lease.count for lease in store.leases)
    # Leases of 1 and 2 in turn: it wastes about a slot in three, not four in five.
    assert max(lease.count for lease in store.leases) <= 2
    assert leased - 50 <= 26 and limited.thrown_away <= leased - 50
