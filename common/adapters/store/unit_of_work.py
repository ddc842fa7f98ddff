"""The PostgreSQL unit of work: the store's repositories opened from a connection factory.

`PostgresStores(connect)` satisfies the stages' units of work (PlannerStores,
ExecutorStores in common/adapters/ports.py): each session is one connection,
closed when the session ends, and every repository on it is the store's own.
The planner's two (`snapshot`, `invalid_plans`) are imported when first opened,
so an executor child does not load them (or the chunking they use).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING

from psycopg2.extensions import connection

from common.adapters.db import round_trips
from common.adapters.store.ledger import Ledger
from common.adapters.store.quotes import RunQuotes
from common.adapters.store.runs import RunRepository

if TYPE_CHECKING:
    from common.adapters.store.invalid_plans import InvalidPlans
    from common.adapters.store.snapshot import DueQuery, Snapshot


class PostgresWriters:
    """The chunk's ledgers: the first on the chunk's own connection, the rest on their own."""

    def __init__(self, conns: list[connection], run_id: str, index: int, trade_date: date):
        self._conns = conns
        self.ledgers = [Ledger(c, run_id, index, trade_date) for c in conns]

    def round_trips(self) -> int:
        return sum(map(round_trips, self._conns))


class PostgresChunk:
    """One attempt at a chunk on one connection: its row, the run's quotes, the writers."""

    def __init__(
        self,
        connect: Callable[[], connection],
        conn: connection,
        run_id: str,
        index: int,
        trade_date: date,
    ) -> None:
        self._connect = connect
        self._conn = conn
        self._key = (run_id, index, trade_date)
        self.runs = RunRepository(conn)
        self.quotes = RunQuotes(conn, run_id)

    @contextmanager
    def writers(self, count: int) -> Iterator[PostgresWriters]:
        """`count` writers (one per connection); the extra connections close on the way out."""
        extra = [self._connect() for _ in range(count - 1)]
        try:
            yield PostgresWriters([self._conn, *extra], *self._key)
        finally:
            for c in extra:
                c.close()


class PostgresStores:
    """The stages' unit of work on PostgreSQL."""

    def __init__(self, connect: Callable[[], connection]) -> None:
        self._connect = connect

    @contextmanager
    def runs(self) -> Iterator[RunRepository]:
        conn = self._connect()
        try:
            yield RunRepository(conn)
        finally:
            conn.close()

    @contextmanager
    def snapshot(self, query: DueQuery) -> Iterator[Snapshot]:
        from common.adapters.store.snapshot import Snapshot

        conn = self._connect()
        try:
            with Snapshot(conn, query) as snapshot:
                yield snapshot
        finally:
            conn.close()

    @contextmanager
    def invalid_plans(self, run_id: str) -> Iterator[InvalidPlans]:
        from common.adapters.store.invalid_plans import InvalidPlans

        sink = InvalidPlans(self._connect(), run_id)
        try:
            yield sink
        finally:
            sink.close()

    @contextmanager
    def chunk(self, run_id: str, index: int, trade_date: date) -> Iterator[PostgresChunk]:
        conn = self._connect()
        try:
            yield PostgresChunk(self._connect, conn, run_id, index, trade_date)
        finally:
            conn.close()
