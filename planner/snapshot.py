"""The due-plan snapshot: what the planner reads from `recurring_investments`.

Two queries inside one REPEATABLE READ, READ ONLY transaction, so both see
the same plans: a count per symbol (for chunking), then every due row
ordered by the chunk it goes to, streamed through a server-side cursor so
memory does not grow with the number of plans.

Due (DESIGN section 6): active, on one of the run's exchanges, and
`next_run_date <= run_date`, unless a final outcome is already recorded for
that date. Rows on exchanges nobody supports are selected too, so that they
get validated and reported as `invalid_plan` instead of silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ, connection

from common.domain.calendar import SUPPORTED_MICS, exchanges_of_run
from common.domain.chunking import Chunking

FETCH_ROWS = 10_000  # rows per round trip of the server-side cursor

PLAN_COLUMNS = (
    "id",
    "user_id",
    "symbol",
    "exchange",
    "asset_currency",
    "amount",
    "currency",
    "fee",
    "fractional",
    "frequency",
    "start_date",
    "next_run_date",
    "version",
)

FINAL_OUTCOME_SQL = (
    "(e.status = 'purchased' OR (e.status = 'skipped' AND e.reason = 'amount_below_minimum'))"
)

_DUE = f"""
    FROM recurring_investments r
    WHERE r.status = 'active'
      AND r.next_run_date <= %(run_date)s
      AND (r.exchange = ANY(%(exchanges)s) OR r.exchange IS NULL
           OR NOT (r.exchange = ANY(%(supported)s)))
      AND NOT EXISTS (
          SELECT 1 FROM plan_executions e
          WHERE e.plan_id = r.id AND e.scheduled_date = r.next_run_date AND {FINAL_OUTCOME_SQL})
"""


@dataclass(frozen=True)
class DueQuery:
    market: str
    run_date: date

    @property
    def params(self) -> dict[str, Any]:
        return {
            "run_date": self.run_date,
            "exchanges": list(exchanges_of_run(self.market)),
            "supported": sorted(SUPPORTED_MICS),
        }


class Snapshot:
    """A consistent read of the due plans; use as a context manager."""

    def __init__(self, conn: connection, query: DueQuery) -> None:
        self._conn = conn
        self._query = query

    def __enter__(self) -> Snapshot:
        self._conn.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.rollback()
        self._conn.set_session(isolation_level="DEFAULT", readonly=False)

    def counts_by_symbol(self) -> dict[str, int]:
        with self._conn.cursor() as cur:
            cur.execute(
                f"SELECT coalesce(r.symbol, ''), count(*) {_DUE} GROUP BY 1", self._query.params
            )
            return {symbol: count for symbol, count in cur.fetchall()}

    def rows_by_chunk(self, chunking: Chunking) -> Iterator[tuple[int, dict[str, Any]]]:
        """(planned chunk index, row) for every due plan, in chunk order, then symbol, then id."""
        slices = [(s.symbol, s.start, s.stop, c.index) for c in chunking.chunks for s in c.slices]
        params = dict(self._query.params)
        params.update(
            sym=[s[0] for s in slices],
            lo=[s[1] for s in slices],
            hi=[s[2] for s in slices],
            chunk=[s[3] for s in slices],
        )
        columns = ", ".join(f"d.{c}" for c in PLAN_COLUMNS)
        sql = f"""
            WITH due AS (
                SELECT r.*, coalesce(r.symbol, '') AS sym,
                       row_number() OVER (PARTITION BY coalesce(r.symbol, '') ORDER BY r.id) - 1
                           AS rank
                {_DUE}
            ),
            slices AS (
                SELECT * FROM unnest(%(sym)s::text[], %(lo)s::int[], %(hi)s::int[],
                                     %(chunk)s::int[]) AS s(sym, lo, hi, chunk)
            )
            SELECT s.chunk, {columns}
            FROM due d JOIN slices s ON s.sym = d.sym AND d.rank >= s.lo AND d.rank < s.hi
            ORDER BY s.chunk, d.sym, d.id
        """
        with self._conn.cursor(name="worthy_due_plans") as cur:
            cur.itersize = FETCH_ROWS
            cur.execute(sql, params)
            for row in cur:
                yield row[0], dict(zip(PLAN_COLUMNS, row[1:], strict=True))
