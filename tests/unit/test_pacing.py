"""Call slots (GCRA), pure: whatever children lease and however late they are, no rolling
minute at the provider ever holds more than its limit."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from common.domain.pacing import (
    LATE_GRACE_SECONDS,
    SAFETY_SECONDS_PER_MINUTE,
    block_size,
    is_late,
    lease,
    spacing,
)
from tests.pacing_checks import ahead_of_pace, most_in_a_minute

NETWORK_JITTER = SAFETY_SECONDS_PER_MINUTE - LATE_GRACE_SECONDS - 0.01  # what the margin absorbs


# One request for a lease (from any child): how long after the previous request it comes,
# a Retry-After that one child saw just before (or none), and what becomes of each slot:
# sent after a delay (the child was slow, paused, starved), or never (the child died).
request = st.tuples(
    st.floats(min_value=0, max_value=2),
    st.one_of(st.none(), st.floats(min_value=0, max_value=30)),
    st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=3)), min_size=20, max_size=50),
)


@settings(max_examples=300)
# The edges, always tried: a call sent as late as allowed with the most jitter, then its
# successor a limit later on time; and a slot found too late, which must not be sent.
@example(
    per_minute=1,
    requests=[(0.0, None, [LATE_GRACE_SECONDS] * 20), (0.0, None, [0.0] * 20)],
    jitter=[NETWORK_JITTER] + [0.0] * 49,
)
@example(
    per_minute=1,
    requests=[(0.0, None, [LATE_GRACE_SECONDS + 0.95] * 20), (0.0, None, [0.0] * 20)],
    jitter=[0.0] * 50,
)
@given(
    # Small limits let a few dozen leases span more than a minute of slots.
    per_minute=st.one_of(st.integers(min_value=1, max_value=12), st.integers(1, 1200)),
    requests=st.lists(request, min_size=1, max_size=80),
    jitter=st.lists(st.floats(min_value=0, max_value=NETWORK_JITTER), min_size=50, max_size=50),
)
def test_no_rolling_minute_ever_holds_more_calls_than_the_limit(
    per_minute: int,
    requests: list[tuple[float, float | None, list[float | None]]],
    jitter: list[float],
) -> None:
    gap, size = spacing(per_minute), block_size(per_minute)
    now, next_free = 0.0, 0.0
    paused_until: float | None = None
    arrivals: list[float] = []
    for n, (after, retry_after, fates) in enumerate(requests):
        now += after
        if retry_after is not None:
            paused_until = max(paused_until or now, now + retry_after)
        got = lease(
            now=now, next_free=next_free, paused_until=paused_until, count=size, spacing=gap
        )
        next_free = got.end
        for i, slot in enumerate(got.slots):
            delay = fates[i % len(fates)]  # a block may hold more slots than fates
            if delay is None:
                continue  # the child died holding it
            sent = slot + delay
            if is_late(slot, sent):
                continue  # thrown away, never sent late
            arrivals.append(sent + jitter[(n + i) % len(jitter)])
    assert most_in_a_minute(arrivals) <= per_minute


def test_a_burst_the_slots_would_not_allow_is_what_the_checks_catch() -> None:
    # The property above can fail: 61 calls in one second is 61 in a minute.
    assert most_in_a_minute([i / 61 for i in range(61)]) == 61
    # Over shorter stretches too: 3 calls in 0.1 s are 1.9 s ahead of 60 a minute.
    assert ahead_of_pace([0.0, 0.05, 0.1], 60) == pytest.approx(1.9)
    assert ahead_of_pace([0.0, 1.0, 2.5, 3.5], 60) == 0.0


@pytest.mark.parametrize("per_minute", [1, 5, 60, 120, 600, 6000])
def test_one_child_calling_back_to_back_keeps_within_two_percent_of_the_limit(
    per_minute: int,
) -> None:
    calls = 5 * per_minute
    next_free, sent = 0.0, []
    while len(sent) < calls:
        got = lease(
            now=0.0,
            next_free=next_free,
            paused_until=None,
            count=block_size(per_minute),
            spacing=spacing(per_minute),
        )
        next_free = got.end
        sent += got.slots
    floor = calls * 60 / per_minute
    assert sent[calls - 1] - sent[0] <= 1.02 * floor
    assert most_in_a_minute(sent[:calls]) <= per_minute


def test_an_idle_provider_saves_nothing_up() -> None:
    got = lease(now=1000.0, next_free=10.0, paused_until=None, count=3, spacing=2.0)
    assert got.slots == [1000.0, 1002.0, 1004.0] and got.end == 1006.0


def test_a_pause_holds_every_slot_back_until_it_ends() -> None:
    got = lease(now=100.0, next_free=101.0, paused_until=130.0, count=2, spacing=1.0)
    assert got.slots == [130.0, 131.0]
    over = lease(now=140.0, next_free=101.0, paused_until=130.0, count=1, spacing=1.0)
    assert over.slots == [140.0]


def test_a_slot_is_usable_within_the_grace_and_never_after() -> None:
    assert not is_late(10.0, 10.0)
    assert not is_late(10.0, 10.0 + LATE_GRACE_SECONDS)
    assert is_late(10.0, 10.0 + LATE_GRACE_SECONDS + 0.001)


@pytest.mark.parametrize(
    ("per_minute", "block"), [(1, 1), (59, 1), (60, 1), (119, 1), (120, 2), (600, 10), (10**6, 200)]
)
def test_a_block_is_about_a_seconds_worth_of_calls(per_minute: int, block: int) -> None:
    assert block_size(per_minute) == block


def test_slots_are_a_little_more_than_a_minute_over_the_limit() -> None:
    assert spacing(60) == pytest.approx(61 / 60)
    with pytest.raises(ValueError):
        spacing(0)
