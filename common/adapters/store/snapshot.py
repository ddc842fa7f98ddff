"""The due-plan snapshot: what the planner reads from `recurring_investments`.

Two queries inside one REPEATABLE READ, READ ONLY transaction, so both see
the same plans: the demand (a count per symbol for chunking, and the FX
bases, for the pricing estimate), then every due row ordered by the chunk it
goes to, streamed through a server-side cursor so memory does not grow with
the number of plans.

Due (docs/design.md section 6): active, on one of the run's exchanges, and
`next_run_date <= run_date`, unless a final outcome is already recorded for
that date. Rows on exchanges nobody supports are selected too, so that they
get validated and reported as `invalid_plan` instead of silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ, connection

from common.adapters.store.sql import FINAL_OUTCOME
from common.domain.calendar import SUPPORTED_MICS, exchanges_of_run
from common.domain.chunking import Chunking
from common.domain.run_key import RunKey

FETCH_ROWS = 10_000  # rows per round trip of the server-side cursor

# The chunk line (docs/design.md section 7): PostgreSQL's to_json of a row with these
# columns (compact JSON, field names as given, dates as YYYY-MM-DD), amounts as
# strings. Bad values go through unchanged, for the planner's validation to
# find and name.
LINE_COLUMNS = ", ".join(
    f"{value} AS {name}"
    for name, value in (
        ("plan_id", "d.id"),
        ("user_id", "d.user_id"),
        ("symbol", "d.symbol"),
        ("exchange", "d.exchange"),
        ("asset_currency", "d.asset_currency"),
        ("amount", "d.amount::text"),
        ("currency", "d.currency"),
        ("fee", "d.fee::text"),
        ("fractional", "d.fractional"),
        ("frequency", "d.frequency"),
        ("start_date", "d.start_date"),
        ("scheduled_date", "d.next_run_date"),
        ("version", "d.version"),
    )
)


_DUE = f"""
    FROM recurring_investments r
    WHERE r.status = 'active'
      AND r.next_run_date <= %(run_date)s
      AND (r.exchange = ANY(%(exchanges)s) OR r.exchange IS NULL
           OR NOT (r.exchange = ANY(%(supported)s)))
      AND NOT EXISTS (
          SELECT 1 FROM plan_executions e
          WHERE e.plan_id = r.id AND e.scheduled_date = r.next_run_date AND {FINAL_OUTCOME})
"""


@dataclass(frozen=True)
class Demand:
    """What the due plans ask for: plans per symbol, and the currencies to convert from."""

    counts_by_symbol: dict[str, int]
    fx_bases: frozenset[str]


@dataclass(frozen=True)
class DueQuery:
    key: RunKey

    @property
    def params(self) -> dict[str, Any]:
        return {
            "run_date": self.key.run_date,
            "exchanges": list(exchanges_of_run(self.key.market)),
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

    def demand(self) -> Demand:
        counts: dict[str, int] = {}
        bases: set[str] = set()
        with self._conn.cursor() as cur:
            # One scan for both: a few groups more than symbols (one per plan currency).
            cur.execute(
                "SELECT coalesce(r.symbol, ''), "
                "CASE WHEN r.currency <> r.asset_currency THEN r.currency END, count(*) "
                f"{_DUE} GROUP BY 1, 2",
                self._query.params,
            )
            for symbol, base, count in cur.fetchall():
                counts[symbol] = counts.get(symbol, 0) + count
                if base:
                    bases.add(base.strip())
        return Demand(counts, frozenset(bases))

    def already_priced(self, run_id: str, symbols: list[str]) -> tuple[int, frozenset[str]]:
        """How many of `symbols`, and which FX bases, the run has in `run_quotes` already
        (a rerun, or a resumed plan, does not fetch them again)."""
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FILTER (WHERE kind = 'price' AND key = ANY(%s)), "
                "coalesce(array_agg(DISTINCT split_part(key, ':', 1)) FILTER (WHERE kind = 'fx'),"
                " '{}') FROM run_quotes WHERE run_id = %s",
                (symbols, run_id),
            )
            row = cur.fetchone()
        assert row is not None
        return int(row[0]), frozenset(row[1])

    def lines_query(self, chunking: Chunking) -> tuple[str, dict[str, Any]]:
        """The SQL (and its parameters) behind `lines_by_chunk`.

        Whole symbols join on the symbol alone; only symbols split across chunks
        need each plan's rank within its symbol (a window over those rows only).
        `due` is not materialised: scanning it a second time when a symbol is
        split is cheaper than writing every due row to a tuplestore.

        The rows are sorted by chunk alone, as they are, and the JSON line is
        built after the sort, so lines are written while they stream. Within a
        chunk the order is the scan's (the executor takes its locks in id order
        itself); a second key would cost ~6x: with few chunks nearly every
        comparison ties on the first and falls to the general comparator.
        """
        divided = chunking.split_symbols
        pieces = [(piece, chunk.index) for chunk in chunking.chunks for piece in chunk.slices]
        whole = [(p.symbol, index) for p, index in pieces if p.symbol not in divided]
        split = [(p.symbol, p.start, p.stop, index) for p, index in pieces if p.symbol in divided]
        params = dict(self._query.params)
        params.update(
            whole_sym=[w[0] for w in whole],
            whole_chunk=[w[1] for w in whole],
            split_sym=[p[0] for p in split],
            split_lo=[p[1] for p in split],
            split_hi=[p[2] for p in split],
            split_chunk=[p[3] for p in split],
        )
        sql = f"""
            WITH due AS NOT MATERIALIZED (SELECT r.*, coalesce(r.symbol, '') AS sym {_DUE}),
            whole AS (
                SELECT * FROM unnest(%(whole_sym)s::text[], %(whole_chunk)s::int[])
                    AS w(sym, chunk)
            ),
            split AS (
                SELECT * FROM unnest(%(split_sym)s::text[], %(split_lo)s::int[],
                                     %(split_hi)s::int[], %(split_chunk)s::int[])
                    AS s(sym, lo, hi, chunk)
            ),
            ranked AS (
                SELECT d.*, row_number() OVER (PARTITION BY d.sym ORDER BY d.id) - 1 AS rank
                FROM due d WHERE d.sym IN (SELECT sym FROM split)
            ),
            placed AS (
                SELECT w.chunk, d.sym, d.id, d.user_id, d.symbol, d.exchange, d.asset_currency,
                       d.amount, d.currency, d.fee, d.fractional, d.frequency, d.start_date,
                       d.next_run_date, d.version
                FROM due d JOIN whole w ON w.sym = d.sym
                UNION ALL
                SELECT s.chunk, d.sym, d.id, d.user_id, d.symbol, d.exchange, d.asset_currency,
                       d.amount, d.currency, d.fee, d.fractional, d.frequency, d.start_date,
                       d.next_run_date, d.version
                FROM ranked d JOIN split s ON s.sym = d.sym AND d.rank >= s.lo AND d.rank < s.hi
            )
            SELECT d.chunk, to_json(line)::text
            FROM (SELECT * FROM placed ORDER BY chunk OFFSET 0) d
            CROSS JOIN LATERAL (SELECT {LINE_COLUMNS}) line
            ORDER BY d.chunk
        """
        return sql, params

    def lines_by_chunk(self, chunking: Chunking) -> Iterator[tuple[int, str]]:
        """(planned chunk index, chunk line as JSON text) for every due plan, in chunk order.
        PostgreSQL writes the JSON; the caller validates each line."""
        sql, params = self.lines_query(chunking)
        with self._conn.cursor() as cur:
            # Sort in memory: the snapshot sorts every due plan once. Join the symbol map
            # by hash: misled by unnest's estimates, the planner may otherwise sort every
            # due row by symbol for a merge join (3 s for a million).
            cur.execute("SET LOCAL work_mem = '256MB'; SET LOCAL enable_mergejoin = off")
        with self._conn.cursor(name="worthy_due_plans") as cur:
            cur.itersize = FETCH_ROWS
            cur.execute(sql, params)
            yield from cur
