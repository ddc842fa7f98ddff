import math
from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.domain.chunking import (
    FARGATE_CHILD,
    LOCAL_CHILD,
    ChildCost,
    Chunking,
    Slice,
    chunk_target,
    plan_chunks,
)
from common.domain.models import MAX_CHUNKS

symbol_counts = st.dictionaries(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=4),
    st.integers(min_value=1, max_value=300),
    max_size=60,
)


def _plans_in(chunking: Chunking) -> dict[str, list[int]]:
    """Symbol -> every plan rank placed in some chunk (with repeats, if any)."""
    placed: dict[str, list[int]] = defaultdict(list)
    for chunk in chunking.chunks:
        for piece in chunk.slices:
            placed[piece.symbol].extend(range(piece.start, piece.stop))
    return placed


@given(counts=symbol_counts, chunk_size=st.integers(min_value=1, max_value=200))
def test_every_plan_lands_in_exactly_one_chunk(counts: dict[str, int], chunk_size: int) -> None:
    placed = _plans_in(plan_chunks(counts, chunk_size))
    assert {s: sorted(r) for s, r in placed.items()} == {
        s: list(range(c)) for s, c in counts.items()
    }


@given(counts=symbol_counts, chunk_size=st.integers(min_value=1, max_value=200))
def test_a_symbol_shares_one_chunk_unless_it_alone_exceeds_the_size(
    counts: dict[str, int], chunk_size: int
) -> None:
    chunking = plan_chunks(counts, chunk_size)
    chunks_of: dict[str, set[int]] = defaultdict(set)
    for chunk in chunking.chunks:
        for piece in chunk.slices:
            chunks_of[piece.symbol].add(chunk.index)
    for symbol, count in counts.items():
        assert len(chunks_of[symbol]) == math.ceil(count / chunking.chunk_size)


@given(counts=symbol_counts, chunk_size=st.integers(min_value=1, max_value=200))
def test_chunks_are_within_the_size_and_no_two_could_be_merged(
    counts: dict[str, int], chunk_size: int
) -> None:
    chunking = plan_chunks(counts, chunk_size)
    sizes = [c.items for c in chunking.chunks]
    assert all(0 < s <= chunking.chunk_size for s in sizes)
    smallest_two = sorted(sizes)[:2]
    if len(smallest_two) == 2:
        assert sum(smallest_two) > chunking.chunk_size
    assert len(sizes) >= math.ceil(sum(counts.values()) / chunking.chunk_size)
    assert [c.index for c in chunking.chunks] == list(range(len(sizes)))


@given(
    counts=symbol_counts,
    chunk_size=st.integers(min_value=1, max_value=20),
    max_chunks=st.integers(min_value=1, max_value=30),
)
def test_the_array_limit_grows_the_chunk_size_only_when_needed(
    counts: dict[str, int], chunk_size: int, max_chunks: int
) -> None:
    chunking = plan_chunks(counts, chunk_size, max_chunks=max_chunks)
    assert len(chunking.chunks) <= max_chunks
    assert chunking.chunk_size >= chunk_size
    if chunking.chunk_size > chunk_size:
        assert len(plan_chunks(counts, chunk_size, max_chunks=10**9).chunks) > max_chunks


def test_ten_thousand_and_one_single_plans_fit_in_at_most_ten_thousand_chunks() -> None:
    counts = {f"S{i:05d}": 1 for i in range(10_001)}
    chunking = plan_chunks(counts, chunk_size=1)
    assert len(chunking.chunks) <= 10_000
    assert chunking.chunk_size == 2
    assert sum(c.items for c in chunking.chunks) == 10_001


def test_a_big_symbol_is_split_into_the_fewest_near_equal_pieces() -> None:
    chunking = plan_chunks({"AAPL": 1001, "MSFT": 10}, chunk_size=500)
    aapl = sorted(
        (p for c in chunking.chunks for p in c.slices if p.symbol == "AAPL"),
        key=lambda p: p.start,
    )
    assert aapl == [Slice("AAPL", 0, 334), Slice("AAPL", 334, 668), Slice("AAPL", 668, 1001)]
    assert len(chunking.chunks) == 3


def test_the_same_input_always_chunks_the_same_way() -> None:
    counts = {"B": 3, "A": 3, "C": 5, "D": 1}
    assert plan_chunks(counts, 6) == plan_chunks(dict(reversed(list(counts.items()))), 6)


@pytest.mark.parametrize("bad", [0, -1])
def test_a_non_positive_chunk_size_is_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        plan_chunks({"A": 1}, bad)


# -- chunk_target: chunks sized from the work ---------------------------------------------


SMALL = ChildCost("a test child", start_seconds=0.5, plans_per_second=5_000, max_plans=60_000)


def test_a_tiny_day_is_one_chunk_which_batch_runs_as_a_plain_job() -> None:
    target = chunk_target(120, max_children=32, cost=SMALL)
    assert (target.size, target.max_chunks) == (120, 32)
    assert len(plan_chunks({"A": 70, "B": 50}, target.size, target.max_chunks).chunks) == 1


def test_a_million_plans_never_exceed_max_children_or_the_array_limit() -> None:
    counts = {f"S{i:04d}": 500 for i in range(2_000)}  # 1,000,000 plans
    for max_children in (1, 2, 32, 500, 50_000):
        target = chunk_target(1_000_000, max_children=max_children, cost=SMALL)
        chunks = plan_chunks(counts, target.size, target.max_chunks).chunks
        assert 1 <= len(chunks) <= min(max_children, MAX_CHUNKS), max_children
        assert sum(c.items for c in chunks) == 1_000_000


def test_chunks_are_no_smaller_than_the_fixed_cost_allows_nor_bigger_than_memory() -> None:
    assert SMALL.min_plans == 10_000  # 4 * 0.5 s * 5,000 plans/s
    by_start = chunk_target(95_000, max_children=32, cost=SMALL)
    assert by_start.size == 10_556 and "start-up" in by_start.why  # 9 children
    many = chunk_target(1_000_000, max_children=32, cost=SMALL)
    assert many.size == 31_250 and "MAX_CHILDREN=32" in many.why  # 100 wanted, 32 allowed
    by_memory = chunk_target(1_050_000, max_children=32, cost=FARGATE_CHILD)
    assert by_memory.size == 95_455 and "memory" in by_memory.why  # 11 tasks, not 10
    capped = chunk_target(1_000_000, max_children=4, cost=SMALL)
    assert capped.size == 250_000 and "MAX_CHILDREN=4" in capped.why
    assert "may not fit a child's memory" in capped.why


def test_a_symbol_bigger_than_the_chunk_is_split() -> None:
    target = chunk_target(50_000, max_children=32, cost=SMALL)  # 5 chunks of 10,000
    chunking = plan_chunks({"BIG": 45_000, "SMALL": 5_000}, target.size, target.max_chunks)
    assert "BIG" in chunking.split_symbols
    assert max(c.items for c in chunking.chunks) <= target.size


def test_chunk_size_overrides_the_sizing() -> None:
    target = chunk_target(100_000, max_children=2, cost=SMALL, explicit=500)
    assert (target.size, target.max_chunks) == (500, MAX_CHUNKS)
    assert "CHUNK_SIZE=500" in target.why


def test_the_default_costs_follow_the_measured_figures() -> None:
    # A local child's fixed cost is about a third of a second: ~14,000 plans amortize it.
    assert 5_000 <= LOCAL_CHILD.min_plans <= 20_000
    # A Fargate task's minute dwarfs its per-plan cost: memory sets its chunk size.
    assert FARGATE_CHILD.min_plans == FARGATE_CHILD.max_plans == 100_000


def test_the_day_says_how_many_children_and_why_and_when_pricing_sets_the_pace() -> None:
    from common.domain.chunking import ChunkPolicy, chunk_the_day

    counts = {f"S{i:04d}": 50 for i in range(2_000)}  # 100,000 plans over 2,000 symbols
    policy = ChunkPolicy(explicit=None, max_children=2, cost=SMALL)
    chunking, why = chunk_the_day(counts, policy)
    assert len(chunking.chunks) == 2
    assert why.startswith("2 chunk(s): 100,000 plan(s) -> 2 child(ren) of ~50,000")
    assert "pricing-bound" not in why
    # 2,000 symbols at 60/min: ~34 minutes of pricing against ~10 s of buying per child.
    _, slow = chunk_the_day(counts, policy, pricing_seconds=2_033)
    assert "pricing-bound" in slow and "more children would add no speed" in slow


def test_a_quick_pricing_is_not_called_the_pace() -> None:
    from common.domain.chunking import ChunkPolicy, chunk_the_day

    # Four plans priced in a few milliseconds: neither buying nor pricing sets a pace.
    _, why = chunk_the_day({"A": 4}, ChunkPolicy(None, 2, SMALL), pricing_seconds=0.003)
    assert "pricing-bound" not in why
