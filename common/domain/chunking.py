"""Symbol-affine chunking: which plans go to which executor child.

Plans of one symbol share a chunk, so a run makes about one price call per
symbol, unless the symbol alone exceeds the chunk size; then it is split into
the fewest near-equal pieces. Pieces are packed best-fit decreasing, which
opens a new chunk only when nothing fits, so no two chunks could be merged
without exceeding the size. When that still needs more than the Batch array
limit, the effective chunk size grows until it does not.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass

from common.domain.models import MAX_CHUNKS


@dataclass(frozen=True, slots=True)
class Slice:
    """Plans `start`..`stop-1` of `symbol`, counted in plan-id order."""

    symbol: str
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    index: int
    slices: tuple[Slice, ...]

    @property
    def items(self) -> int:
        return sum(s.size for s in self.slices)

    @property
    def symbols(self) -> int:
        return len({s.symbol for s in self.slices})


@dataclass(frozen=True, slots=True)
class Chunking:
    chunk_size: int  # the effective size: the requested one unless the array limit forced more
    chunks: tuple[ChunkPlan, ...]

    @property
    def split_symbols(self) -> frozenset[str]:
        """Symbols whose plans span more than one chunk."""
        seen: dict[str, int] = {}
        for chunk in self.chunks:
            for piece in chunk.slices:
                seen[piece.symbol] = seen.get(piece.symbol, 0) + 1
        return frozenset(symbol for symbol, pieces in seen.items() if pieces > 1)


def plan_chunks(
    counts: Mapping[str, int], chunk_size: int, max_chunks: int = MAX_CHUNKS
) -> Chunking:
    """Assign every plan (`counts`: plans per symbol) to exactly one chunk."""
    if chunk_size < 1 or max_chunks < 1:
        raise ValueError("chunk_size and max_chunks must be positive")
    size = chunk_size
    while True:
        chunks = _pack(_pieces(counts, size), size)
        if len(chunks) <= max_chunks:
            return Chunking(size, chunks)
        size = max(size + 1, math.ceil(size * len(chunks) / max_chunks))


def _pieces(counts: Mapping[str, int], size: int) -> list[Slice]:
    pieces = []
    for symbol, count in counts.items():
        if count <= 0:
            continue
        parts = math.ceil(count / size)
        base, extra = divmod(count, parts)
        start = 0
        for part in range(parts):
            stop = start + base + (1 if part < extra else 0)
            pieces.append(Slice(symbol, start, stop))
            start = stop
    # Largest first; ties in a fixed order so the same input always chunks the same way.
    pieces.sort(key=lambda p: (-p.size, p.symbol, p.start))
    return pieces


def _pack(pieces: list[Slice], size: int) -> tuple[ChunkPlan, ...]:
    bins: list[list[Slice]] = []
    free: list[tuple[int, int]] = []  # (room left, bin number), sorted
    for piece in pieces:
        at = bisect.bisect_left(free, (piece.size, -1))
        if at == len(free):
            bins.append([piece])
            room, number = size - piece.size, len(bins) - 1
        else:
            room, number = free.pop(at)
            bins[number].append(piece)
            room -= piece.size
        if room > 0:
            bisect.insort(free, (room, number))
    return tuple(
        ChunkPlan(i, tuple(sorted(b, key=lambda s: (s.symbol, s.start))))
        for i, b in enumerate(bins)
    )
