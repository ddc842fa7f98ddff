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


# -- how many chunks: from the work ------------------------------------------------------
#
# Each child pays a fixed cost before it buys anything (a process or a Fargate task
# starting, imports, clients, the manifest) and then a cost per plan. A chunk is big
# enough when the fixed cost is at most about a fifth of the child's time:
#     start <= (start + plans * per_plan) / 5   <=>   plans >= 4 * start / per_plan
# and small enough for the child's memory. The figures: docs/sizing-and-cost.md "Sizing".


@dataclass(frozen=True, slots=True)
class ChildCost:
    """What one executor child costs where it runs."""

    where: str
    start_seconds: float  # start to exit on a chunk with nothing to buy
    plans_per_second: float  # one child buying, beside as many as run at once
    max_plans: int  # the most a child's memory holds (peak RSS grows ~2 KB a plan)

    @property
    def min_plans(self) -> int:
        """The smallest chunk that keeps the fixed cost under a fifth of a child's time."""
        return min(
            self.max_plans, max(1, math.ceil(4 * self.start_seconds * self.plans_per_second))
        )


# A local process: measured by `make bench` on the 2-vCPU development machine
# (BENCHMARKS.md "Chunk sizing": 0.34 s start to exit, two children at once buying
# ~10,400 and ~10,800 plans a second each).
LOCAL_CHILD = ChildCost("a local process", 0.35, 10_000, 400_000)
# A Fargate task of the template's size (0.25 vCPU, 512 MiB): about a minute from
# submission to running (image pull, ENI) and billed for at least one; a quarter of
# a vCPU buys ~2,000 plans a second (an estimate: not measured here; any rate above
# ~420 a second makes memory, not the start, set its chunk); 100,000 plans peak at
# ~290 MB.
FARGATE_CHILD = ChildCost("a Fargate task", 60.0, 2_000, 100_000)


@dataclass(frozen=True, slots=True)
class ChunkTarget:
    size: int  # plans per chunk to aim for
    max_chunks: int  # chunks the run may have
    why: str  # one line for the log and --dry-run


def chunk_target(
    due: int, *, max_children: int, cost: ChildCost, explicit: int | None = None
) -> ChunkTarget:
    """How big the chunks should be for `due` plans.

    `explicit` (CHUNK_SIZE) wins, bounded only by the array limit. Otherwise: as
    many children as the work needs for chunks of at least `cost.min_plans` and at
    most `cost.max_plans`, never more than `max_children` (MAX_CHILDREN) or Batch's
    10,000, at least one; the plans spread evenly over them.
    """
    if explicit is not None:
        return ChunkTarget(explicit, MAX_CHUNKS, f"CHUNK_SIZE={explicit:,} (explicit)")
    cap = max(1, min(max_children, MAX_CHUNKS))
    by_start = max(1, due // cost.min_plans)
    by_memory = math.ceil(due / cost.max_plans) if due else 1
    children = min(cap, max(by_start, by_memory))
    size = max(1, math.ceil(due / children))
    if children == cap and cap < max(by_start, by_memory):
        reason = f"at most MAX_CHILDREN={max_children:,} children"
        if size > cost.max_plans:
            reason += f" (chunks past {cost.max_plans:,} plans may not fit a child's memory)"
    elif cost.min_plans == cost.max_plans:  # the start-up would want bigger chunks
        reason = (
            f"at most {cost.max_plans:,} plans fit {cost.where}'s memory (its "
            f"{cost.start_seconds:g} s start-up would want more)"
        )
    else:
        reason = (
            f"at least {cost.min_plans:,} plans a chunk keep {cost.where}'s start-up "
            f"({cost.start_seconds:g} s) under a fifth of its time"
        )
    why = f"{due:,} plan(s) -> {children:,} child(ren) of ~{size:,}: {reason}"
    return ChunkTarget(size, cap, why)


# The template's compute environment runs MaxVcpus / JobVcpus containers at once
# (8 / 0.25 by default; a test pins it): MAX_CHILDREN's default in AWS.
TEMPLATE_MAX_CHILDREN = 32


@dataclass(frozen=True, slots=True)
class ChunkPolicy:
    """How a run is cut into chunks: CHUNK_SIZE when given, else from the work."""

    explicit: int | None = None  # CHUNK_SIZE
    max_children: int = TEMPLATE_MAX_CHILDREN  # MAX_CHILDREN
    cost: ChildCost = LOCAL_CHILD  # where the children run

    def target(self, due: int) -> ChunkTarget:
        return chunk_target(
            due, max_children=self.max_children, cost=self.cost, explicit=self.explicit
        )


def chunk_the_day(
    counts: Mapping[str, int], policy: ChunkPolicy, pricing_seconds: float | None = None
) -> tuple[Chunking, str]:
    """The day's chunks, and one line saying how many children and why.

    With the run's pricing time (every child shares each provider's per-key
    rate, so it does not shrink with more children), says when pricing, not
    buying, sets the pace.
    """
    due = sum(c for c in counts.values() if c > 0)
    target = policy.target(due)
    chunking = plan_chunks(counts, target.size, target.max_chunks)
    children = len(chunking.chunks)
    why = target.why
    if chunking.chunk_size != target.size:
        why += f"; chunks grown to {chunking.chunk_size:,} to stay within {target.max_chunks:,}"
    if pricing_seconds and children:
        buying = due / children / policy.cost.plans_per_second
        # Said only when pricing outlasts both the buying and a child's start-up: a few
        # symbols priced in milliseconds set no pace worth a word.
        if pricing_seconds > max(buying, policy.cost.start_seconds):
            why += (
                f"; pricing-bound: the providers' rates take ~{pricing_seconds:,.0f} s whatever "
                f"the children, buying ~{buying:,.0f} s, so more children would add no speed"
            )
    return chunking, f"{children:,} chunk(s): {why}"
