"""Writing outcomes exactly once: one database transaction per batch of plans.

A batch is staged with COPY into a temporary table, then one round trip of
statements

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
from datetime import date

import psycopg2
import psycopg2.errors
from psycopg2.extensions import connection

from common.adapters.store.sql import FINAL_OUTCOME
from common.domain.errors import DatabaseUnavailable, InputError
from common.domain.outcomes import Outcome
from common.domain.statuses import Decision, Execution, Reason
from common.platform.failpoints import failpoint
from common.platform.logging import get_logger

log = get_logger(__name__)

DEADLOCK_RETRIES = 3

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
    plan_id bigint PRIMARY KEY, scheduled_date date, version int, outcome text, reason text,
    user_id text, symbol text, exchange text, asset_currency text, amount numeric,
    currency text, fee numeric, quantity numeric, price numeric, fx_rate numeric,
    cost numeric, price_source text, price_time timestamptz, next_run_date date
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_won (
    plan_id bigint PRIMARY KEY, transaction_id bigint
) ON COMMIT DELETE ROWS
"""

# Four statements sent together (one round trip). Each later one runs on a
# fresh snapshot of this transaction, so it sees what the earlier ones wrote;
# results flow through the indexed stage table rather than joins between
# data-modifying CTEs, whose row counts the planner cannot estimate.
_APPLY = f"""
SELECT 1 FROM recurring_investments
WHERE id IN (SELECT plan_id FROM stage_outcomes) ORDER BY id FOR UPDATE;

WITH won AS (
    UPDATE recurring_investments r SET
        next_run_date = s.next_run_date,
        runs_completed = r.runs_completed + (s.outcome = '{Decision.PURCHASE}')::int,
        status = CASE
            WHEN (r.end_date IS NOT NULL AND s.next_run_date > r.end_date)
              OR (r.max_runs IS NOT NULL
                  AND r.runs_completed + (s.outcome = '{Decision.PURCHASE}')::int >= r.max_runs)
            THEN 'completed' ELSE r.status END,
        updated_at = now()
    FROM stage_outcomes s
    WHERE r.id = s.plan_id
      AND s.outcome IN ('{Decision.PURCHASE}', '{Decision.BELOW_MINIMUM}')
      AND r.version = s.version AND r.status = 'active'
      AND r.next_run_date = s.scheduled_date
      AND NOT EXISTS (SELECT 1 FROM transactions t
                      WHERE t.plan_id = s.plan_id AND t.scheduled_date = s.scheduled_date)
      AND NOT EXISTS (SELECT 1 FROM plan_executions e
                      WHERE e.plan_id = s.plan_id AND e.scheduled_date = s.scheduled_date
                        AND {FINAL_OUTCOME})
    RETURNING r.id, s.outcome
)
-- The winners, with their transaction ids drawn now, so nothing is read back later.
INSERT INTO stage_won (plan_id, transaction_id)
SELECT id, CASE WHEN outcome = '{Decision.PURCHASE}'
    THEN nextval(pg_get_serial_sequence('transactions', 'id')) END
FROM won;

INSERT INTO assets AS a (user_id, symbol, exchange, currency, quantity, cost_basis)
SELECT s.user_id, s.symbol, s.exchange, min(s.asset_currency), sum(s.quantity), sum(s.cost)
FROM stage_outcomes s JOIN stage_won w ON w.plan_id = s.plan_id
WHERE s.outcome = '{Decision.PURCHASE}'
GROUP BY s.user_id, s.symbol, s.exchange ORDER BY s.user_id, s.symbol, s.exchange
ON CONFLICT (user_id, symbol, exchange) DO UPDATE
SET quantity = a.quantity + excluded.quantity,
    cost_basis = a.cost_basis + excluded.cost_basis,
    updated_at = now();

INSERT INTO transactions (id, user_id, asset_id, plan_id, run_id, type, trade_date,
    scheduled_date, quantity, price, price_currency, amount, currency, fee, fx_rate,
    price_source, price_time)
SELECT w.transaction_id, s.user_id, a.id, s.plan_id, %(run_id)s, 'buy', %(trade_date)s,
    s.scheduled_date, s.quantity, s.price, s.asset_currency, s.amount, s.currency, s.fee,
    s.fx_rate, s.price_source, s.price_time
FROM stage_outcomes s
JOIN stage_won w ON w.plan_id = s.plan_id
JOIN assets a ON a.user_id = s.user_id AND a.symbol = s.symbol AND a.exchange = s.exchange
WHERE s.outcome = '{Decision.PURCHASE}'
ORDER BY s.plan_id;

WITH recorded AS (
    INSERT INTO plan_executions AS e (plan_id, scheduled_date, run_id, chunk_index, status,
        reason, transaction_id)
    SELECT s.plan_id, s.scheduled_date, %(run_id)s, %(chunk_index)s,
        CASE WHEN w.transaction_id IS NOT NULL THEN '{Execution.PURCHASED}'
             WHEN s.outcome = '{Decision.FAIL}' THEN '{Execution.FAILED}'
             ELSE '{Execution.SKIPPED}' END,
        CASE WHEN w.transaction_id IS NOT NULL THEN NULL
             WHEN s.outcome IN ('{Decision.FAIL}', '{Decision.INVALID}') THEN s.reason
             WHEN w.plan_id IS NOT NULL THEN '{Reason.AMOUNT_BELOW_MINIMUM}'
             ELSE '{Reason.PLAN_CHANGED}' END,
        w.transaction_id
    FROM stage_outcomes s LEFT JOIN stage_won w ON w.plan_id = s.plan_id
    ORDER BY s.plan_id
    ON CONFLICT (plan_id, scheduled_date) DO UPDATE
    SET run_id = excluded.run_id, chunk_index = excluded.chunk_index, status = excluded.status,
        reason = excluded.reason, transaction_id = excluded.transaction_id,
        attempts = e.attempts + 1, updated_at = now()
    WHERE NOT {FINAL_OUTCOME}
    RETURNING e.status, e.reason
)
SELECT status, coalesce(reason, ''), count(*) FROM recorded GROUP BY 1, 2
"""


@dataclass(frozen=True, slots=True)
class Batch:
    """Outcomes ready to stage: COPY text and how many plans it holds (and the outcomes
    themselves, for a ledger that does not speak COPY: the unit tests' fake)."""

    copy_text: str
    size: int
    outcomes: Sequence[Outcome] = ()


class Ledger:
    """Applies batches of outcomes on one connection (not autocommit)."""

    def __init__(self, conn: connection, run_id: str, chunk_index: int, trade_date: date) -> None:
        self._conn = conn
        self._params = {"run_id": run_id, "chunk_index": chunk_index, "trade_date": trade_date}
        with conn, conn.cursor() as cur:
            cur.execute(_CREATE_STAGE)

    @staticmethod
    def prepare(outcomes: Sequence[Outcome]) -> Batch:
        """The batch as COPY text: pure work, done while the previous batch is written."""
        return Batch("".join(_copy_line(o) for o in outcomes), len(outcomes), outcomes)

    def apply(self, batch: Batch) -> Counter[str]:
        """Write one batch in one transaction; retried on deadlock, never half-applied.
        Returns how many executions it recorded, by status: none for a plan whose outcome
        an earlier attempt made final (bought, or below the minimum)."""
        for attempt in range(1, DEADLOCK_RETRIES + 1):
            try:
                return self._apply_once(batch)
            except (psycopg2.errors.DeadlockDetected, psycopg2.errors.SerializationFailure):
                # Narrow on purpose, not error_map's: a deadlock is retried here first, and
                # only then is it the transient error the table would make of it.
                self._conn.rollback()
                if attempt == DEADLOCK_RETRIES:
                    raise DatabaseUnavailable("deadlocks kept aborting a batch", attempt) from None
                log.warning("batch aborted by a deadlock; retrying", extra={"attempt": attempt})
            except psycopg2.DataError as exc:
                # Narrow on purpose, not error_map's (to which it is a bug): a value no
                # column can hold (out of range, a NUL byte) fails the same batch the same
                # way every time, so it is bad input, not a bug or an outage.
                self._conn.rollback()
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InputError(
                    f"the database refused a value in a batch of {batch.size} plan(s): {why}"
                ) from None
        raise AssertionError("unreachable")

    def _apply_once(self, batch: Batch) -> Counter[str]:
        recorded: Counter[str] = Counter()
        with self._conn.cursor() as cur:
            cur.copy_expert(
                f"COPY stage_outcomes ({', '.join(_STAGE_COLUMNS)}) FROM STDIN",
                io.StringIO(batch.copy_text),
            )
            failpoint("executor.after_stage")
            cur.execute(_APPLY, self._params)
            for status, _, count in cur.fetchall():
                recorded[status] += int(count)
        failpoint("executor.before_batch_commit")
        self._conn.commit()
        failpoint("executor.after_batch_commit")
        return recorded


_NULL = "\\N"
_COPY_SPECIALS = ("\\", "\t", "\n", "\r")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str | None) -> str:
    """A string in COPY's text format (escaping only when a special character is there)."""
    if value is None:
        return _NULL
    if any(c in value for c in _COPY_SPECIALS):
        return value.translate(_COPY_ESCAPES)
    return value


def _opt(value: object) -> str:
    return _NULL if value is None else str(value)


def _copy_line(o: Outcome) -> str:
    # Symbols, exchanges and currencies passed validation (no special characters);
    # numbers and dates print as PostgreSQL reads them.
    return (
        f"{o.plan_id}\t{o.scheduled_date}\t{o.version}\t{o.outcome}\t{_text(o.reason)}\t"
        f"{_text(o.user_id)}\t{o.symbol}\t{o.exchange}\t{o.asset_currency}\t{o.amount}\t"
        f"{o.currency}\t{o.fee}\t{_opt(o.quantity)}\t{_opt(o.price)}\t{_opt(o.fx_rate)}\t"
        f"{_opt(o.cost)}\t{_text(o.price_source)}\t{_opt(o.price_time)}\t"
        f"{_opt(o.next_run_date)}\n"
    )
