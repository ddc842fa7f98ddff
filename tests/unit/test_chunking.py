import math
from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.domain.chunking import Chunking, Slice, plan_chunks

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
