"""Turning a chunk's lines into what goes to S3: validated, gzipped, counted.

Pure work on plain data, so it can run in worker processes: on a big run the
planner streams rows from the database while other cores validate and
compress earlier chunks (spawned workers, so no lock or connection of the
parent is ever inherited).
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from common.adapters.manifest_store import encode_chunk
from common.domain.models import snapshot_from_line
from common.domain.validation import InvalidPlan

# Below this many due plans, starting worker processes costs more than it saves.
PARALLEL_FROM_PLANS = 50_000


@dataclass(frozen=True)
class PreparedChunk:
    data: bytes  # gzipped JSON lines; empty when no line was valid
    items: int
    symbols: int
    invalid: list[InvalidPlan]


def prepare_chunk(lines: list[str]) -> PreparedChunk:
    """Validate each line as the executor will, keep the valid ones, compress them."""
    kept: list[bytes] = []
    symbols: set[str] = set()
    invalid: list[InvalidPlan] = []
    for line in lines:
        checked = snapshot_from_line(line)
        if isinstance(checked, InvalidPlan):
            invalid.append(checked)
            continue
        kept.append(line.encode() + b"\n")
        symbols.add(checked.symbol)
    return PreparedChunk(encode_chunk(kept) if kept else b"", len(kept), len(symbols), invalid)


def prepared_chunks(groups: Iterable[list[str]], workers: int) -> Iterator[PreparedChunk]:
    """`prepare_chunk` of each group, in order; on `workers` processes when more than one."""
    if workers <= 1:
        yield from map(prepare_chunk, groups)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        in_flight: deque[Future[PreparedChunk]] = deque()
        for group in groups:
            in_flight.append(pool.submit(prepare_chunk, group))
            if len(in_flight) > workers:  # bounded: memory stays a few chunks deep
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
