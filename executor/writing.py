"""Feeding batches to the ledger over one or more connections.

While a batch is being written (psycopg2 releases the GIL while PostgreSQL
works), the next one is decided and formatted; with several connections,
several batches are written at once. Each connection has one batch in flight
at most. Batches never share a plan, and every write takes its locks in a
fixed order (plans by id, holdings by user/symbol/exchange), so concurrent
batches queue rather than deadlock (and a deadlock would be retried).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from common.logging import carry_context
from common.store.ledger import Batch, Ledger


def write_batches(ledgers: list[Ledger], batches: Iterable[Batch]) -> int:
    """Apply every batch; return how many there were. Raises the first writer error."""
    slots: list[Future[None] | None] = [None] * len(ledgers)
    count = 0
    with ThreadPoolExecutor(len(ledgers), thread_name_prefix="ledger") as pool:
        for count, batch in enumerate(batches, start=1):
            slot = (count - 1) % len(ledgers)
            previous = slots[slot]
            if previous is not None:
                previous.result()
            slots[slot] = pool.submit(carry_context(ledgers[slot].apply), batch)
        for future in slots:
            if future is not None:
                future.result()
    return count
