"""The executor's write step: decide each plan and feed the batches to the ledger.

While a batch is being written (psycopg2 releases the GIL while PostgreSQL
works), the next one is decided and formatted; with several connections,
several batches are written at once. Each connection has one batch in flight
at most. Batches never share a plan, and every write takes its locks in a
fixed order (plans by id, holdings by user/symbol/exchange), so concurrent
batches queue rather than deadlock (and a deadlock would be retried).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from common.adapters.ports import LedgerWriter
from common.adapters.store.ledger import Batch, Ledger
from common.platform.logging import carry_context
from common.platform.progress import HEARTBEAT_SECONDS, Progress
from executor.context import ChunkRun, elapsed_ms
from executor.decisions import decide
from executor.pricing import Pricing

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Written:
    """What the write step did: its timings for results/N.json (write_ms, db_round_trips:
    every statement the chunk sent, on its own connection and the writers'), and the
    executions this attempt recorded by status (none for a plan already bought)."""

    timings: dict[str, int]
    recorded: Counter[str]


def write_chunk(run: ChunkRun, pricing: Pricing) -> Written:
    """Decide and write every plan of the chunk."""
    ticks = time.monotonic()
    deps = run.deps
    # One batch in flight per connection: a chunk of fewer batches needs fewer of them.
    batches = -(-len(run.plans) // deps.write_batch_size)
    with run.session.writers(min(deps.write_connections, batches)) as writers:
        with Progress(len(run.plans), "writing", unit="plans", every=HEARTBEAT_SECONDS) as bar:
            recorded = write_batches(writers.ledgers, _decided_batches(run, pricing), bar.advance)
        trips = writers.round_trips()
    return Written({"write_ms": elapsed_ms(ticks), "db_round_trips": trips}, recorded)


def _decided_batches(run: ChunkRun, pricing: Pricing) -> Iterator[Batch]:
    """The chunk's outcomes as COPY batches, each decided only when a writer asks for it."""
    run_date, share_decimals = run.manifest.run_date, run.deps.share_decimals
    prices, rates = pricing.prices, pricing.rates
    for plans in _batches(run.plans, run.deps.write_batch_size):
        outcomes = [
            decide(
                p,
                prices[p.symbol],
                rates.get((p.currency, p.asset_currency)),
                run_date=run_date,
                share_decimals=share_decimals,
                calendar=run.calendar(p.exchange),
            )
            for p in plans
        ]
        yield Ledger.prepare(outcomes)


def write_batches(
    ledgers: Sequence[LedgerWriter], batches: Iterable[Batch], written: Callable[[int], None]
) -> Counter[str]:
    """Apply every batch, telling `written` each batch's size once it is committed; return
    the executions recorded, by status. Raises the first writer error."""
    slots: list[Future[Counter[str]] | None] = [None] * len(ledgers)
    recorded: Counter[str] = Counter()

    def apply(ledger: LedgerWriter, batch: Batch) -> Counter[str]:
        counts = ledger.apply(batch)
        written(batch.size)
        return counts

    with ThreadPoolExecutor(len(ledgers), thread_name_prefix="ledger") as pool:
        for count, batch in enumerate(batches, start=1):
            slot = (count - 1) % len(ledgers)
            previous = slots[slot]
            if previous is not None:
                recorded += previous.result()
            slots[slot] = pool.submit(carry_context(apply), ledgers[slot], batch)
        for future in slots:
            if future is not None:
                recorded += future.result()
    return recorded


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
