"""Writing outcomes exactly once: one database transaction per batch of plans.

A batch is staged with COPY into a temporary table, then one statement

    locks the batch's plans in id order            (duplicate children queue here)
    advances each plan that still matches its snapshot (version, status,
        next_run_date): the compare-and-set that makes a purchase happen once
    upserts one aggregated row per (user, symbol, exchange) into assets
    inserts the transactions                       UNIQUE(plan_id, scheduled_date)
    upserts plan_executions, never over a final outcome

and the batch commits. A crash loses at most the batch in flight, which a
rerun redoes; a second attempt, a concurrent duplicate, or a rerun days
later finds the plan advanced (or the outcome final) and changes nothing.
Round trips per batch: COPY, the statement, COMMIT - whatever the batch size.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import psycopg2
import psycopg2.errors
from psycopg2.extensions import connection

from common.errors import DatabaseUnavailable, InputError
from common.failpoints import failpoint
from common.logging import get_logger

log = get_logger(__name__)

PURCHASE = "purchase"
BELOW_MINIMUM = "below_minimum"
FAIL = "fail"
INVALID = "invalid"  # skipped with its `invalid_plan: ...` reason; stays due
DEADLOCK_RETRIES = 3

FINAL_SQL = (
    "(e.status = 'purchased' OR (e.status = 'skipped' AND e.reason = 'amount_below_minimum'))"
)

_STAGE_COLUMNS = (
    "plan_id",
    "scheduled_date",
    "version",
    "outcome",
    "reason",
    "user_id",
    "symbol",
    "exchange",
    "asset_currency",
    "amount",
    "currency",
    "fee",
    "quantity",
    "price",
    "fx_rate",
    "cost",
    "price_source",
    "price_time",
    "next_run_date",
)

_CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS stage_outcomes (
    plan_id bigint, scheduled_date date, version int, outcome text, reason text,
    user_id text, symbol text, exchange text, asset_currency text, amount numeric,
    currency text, fee numeric, quantity numeric, price numeric, fx_rate numeric,
    cost numeric, price_source text, price_time timestamptz, next_run_date date
) ON COMMIT DELETE ROWS
"""

_APPLY = f"""
SELECT 1 FROM recurring_investments
WHERE id IN (SELECT plan_id FROM stage_outcomes) ORDER BY id FOR UPDATE;

WITH s AS (SELECT * FROM stage_outcomes),
won AS (
    UPDATE recurring_investments r SET
        next_run_date = s.next_run_date,
        runs_completed = r.runs_completed + (s.outcome = '{PURCHASE}')::int,
        status = CASE
            WHEN (r.end_date IS NOT NULL AND s.next_run_date > r.end_date)
              OR (r.max_runs IS NOT NULL
                  AND r.runs_completed + (s.outcome = '{PURCHASE}')::int >= r.max_runs)
            THEN 'completed' ELSE r.status END,
        updated_at = now()
    FROM s
    WHERE r.id = s.plan_id
      AND s.outcome IN ('{PURCHASE}', '{BELOW_MINIMUM}')
      AND r.version = s.version AND r.status = 'active'
      AND r.next_run_date = s.scheduled_date
      AND NOT EXISTS (SELECT 1 FROM transactions t
                      WHERE t.plan_id = s.plan_id AND t.scheduled_date = s.scheduled_date)
      AND NOT EXISTS (SELECT 1 FROM plan_executions e
                      WHERE e.plan_id = s.plan_id AND e.scheduled_date = s.scheduled_date
                        AND {FINAL_SQL})
    RETURNING r.id
),
bought AS (
    SELECT s.* FROM s JOIN won ON won.id = s.plan_id WHERE s.outcome = '{PURCHASE}'
),
holdings AS (
    INSERT INTO assets AS a (user_id, symbol, exchange, currency, quantity, cost_basis)
    SELECT user_id, symbol, exchange, min(asset_currency), sum(quantity), sum(cost)
    FROM bought GROUP BY user_id, symbol, exchange ORDER BY user_id, symbol, exchange
    ON CONFLICT (user_id, symbol, exchange) DO UPDATE
    SET quantity = a.quantity + excluded.quantity,
        cost_basis = a.cost_basis + excluded.cost_basis,
        updated_at = now()
    RETURNING a.id, a.user_id, a.symbol, a.exchange
),
tx AS (
    INSERT INTO transactions (user_id, asset_id, plan_id, run_id, type, trade_date,
        scheduled_date, quantity, price, price_currency, amount, currency, fee, fx_rate,
        price_source, price_time)
    SELECT b.user_id, h.id, b.plan_id, %(run_id)s, 'buy', %(trade_date)s, b.scheduled_date,
        b.quantity, b.price, b.asset_currency, b.amount, b.currency, b.fee, b.fx_rate,
        b.price_source, b.price_time
    FROM bought b
    JOIN holdings h ON h.user_id = b.user_id AND h.symbol = b.symbol AND h.exchange = b.exchange
    ORDER BY b.plan_id
    RETURNING id, plan_id
),
outcomes AS (
    SELECT s.plan_id, s.scheduled_date, tx.id AS transaction_id,
        CASE WHEN tx.id IS NOT NULL THEN 'purchased'
             WHEN s.outcome = '{FAIL}' THEN 'failed'
             ELSE 'skipped' END AS status,
        CASE WHEN tx.id IS NOT NULL THEN NULL
             WHEN s.outcome IN ('{FAIL}', '{INVALID}') THEN s.reason
             WHEN won.id IS NOT NULL THEN 'amount_below_minimum'
             ELSE 'plan_changed' END AS reason
    FROM s LEFT JOIN won ON won.id = s.plan_id LEFT JOIN tx ON tx.plan_id = s.plan_id
),
recorded AS (
    INSERT INTO plan_executions AS e (plan_id, scheduled_date, run_id, chunk_index, status,
        reason, transaction_id)
    SELECT plan_id, scheduled_date, %(run_id)s, %(chunk_index)s, status, reason, transaction_id
    FROM outcomes ORDER BY plan_id
    ON CONFLICT (plan_id, scheduled_date) DO UPDATE
    SET run_id = excluded.run_id, chunk_index = excluded.chunk_index, status = excluded.status,
        reason = excluded.reason, transaction_id = excluded.transaction_id,
        attempts = e.attempts + 1, updated_at = now()
    WHERE NOT {FINAL_SQL}
    RETURNING e.status, e.reason
)
SELECT status, coalesce(reason, ''), count(*) FROM recorded GROUP BY 1, 2
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the executor decided for one plan, before the database has its say."""

    plan_id: int
    scheduled_date: date
    version: int
    outcome: str  # PURCHASE, BELOW_MINIMUM, FAIL or INVALID
    reason: str | None
    user_id: str
    symbol: str
    exchange: str
    asset_currency: str
    amount: Decimal
    currency: str
    fee: Decimal
    next_run_date: date | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    fx_rate: Decimal | None = None
    cost: Decimal | None = None
    price_source: str | None = None
    price_time: datetime | None = None


@dataclass
class BatchCounts:
    """What a batch changed: (status, reason) -> plans. Plans not counted were already final."""

    changed: Counter[tuple[str, str]]
    staged: int

    @property
    def unchanged(self) -> int:
        return self.staged - sum(self.changed.values())


class Ledger:
    """Applies batches of outcomes on one connection (not autocommit)."""

    def __init__(self, conn: connection, run_id: str, chunk_index: int, trade_date: date) -> None:
        self._conn = conn
        self._params = {"run_id": run_id, "chunk_index": chunk_index, "trade_date": trade_date}
        with conn, conn.cursor() as cur:
            cur.execute(_CREATE_STAGE)
        self.round_trips = 0

    def apply(self, outcomes: Sequence[Outcome]) -> BatchCounts:
        """Write one batch in one transaction; retried on deadlock, never half-applied."""
        for attempt in range(1, DEADLOCK_RETRIES + 1):
            try:
                return self._apply_once(outcomes)
            except (psycopg2.errors.DeadlockDetected, psycopg2.errors.SerializationFailure):
                self._conn.rollback()
                if attempt == DEADLOCK_RETRIES:
                    raise DatabaseUnavailable("deadlocks kept aborting a batch", attempt) from None
                log.warning("batch aborted by a deadlock; retrying", extra={"attempt": attempt})
            except psycopg2.DataError as exc:
                # A value no column can hold (out of range, a NUL byte): the same batch
                # fails the same way every time, so it is bad input, not a bug or an outage.
                self._conn.rollback()
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InputError(
                    f"the database refused a value in a batch of {len(outcomes)} plan(s): {why}"
                ) from None
        raise AssertionError("unreachable")

    def _apply_once(self, outcomes: Sequence[Outcome]) -> BatchCounts:
        with self._conn.cursor() as cur:
            cur.copy_expert(
                f"COPY stage_outcomes ({', '.join(_STAGE_COLUMNS)}) FROM STDIN",
                io.StringIO("".join(_copy_line(o) for o in outcomes)),
            )
            failpoint("executor.after_stage")
            cur.execute(_APPLY, self._params)
            changed = Counter({(status, reason): n for status, reason, n in cur.fetchall()})
        failpoint("executor.before_batch_commit")
        self._conn.commit()
        self.round_trips += 3
        failpoint("executor.after_batch_commit")
        return BatchCounts(changed, len(outcomes))


def _copy_line(o: Outcome) -> str:
    values = (
        o.plan_id,
        o.scheduled_date,
        o.version,
        o.outcome,
        o.reason,
        o.user_id,
        o.symbol,
        o.exchange,
        o.asset_currency,
        o.amount,
        o.currency,
        o.fee,
        o.quantity,
        o.price,
        o.fx_rate,
        o.cost,
        o.price_source,
        o.price_time,
        o.next_run_date,
    )
    return "\t".join(_copy_text(v) for v in values) + "\n"


def _copy_text(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        # COPY text format: escape the characters it treats specially.
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)
