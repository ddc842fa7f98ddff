"""One plan as support sees it: its row, and its executions with their purchases."""

from __future__ import annotations

from typing import Any

from psycopg2.extensions import connection

_PLAN_COLUMNS = (
    "id, user_id, symbol, exchange, asset_currency, amount, currency, fee, frequency, "
    "start_date, end_date, max_runs, runs_completed, next_run_date, fractional, status, "
    "version, created_at, updated_at"
)

_EXECUTIONS = """
SELECT e.scheduled_date, e.status, e.reason, e.run_id, e.chunk_index, e.attempts,
       e.updated_at, t.trade_date, t.quantity, t.price, t.price_currency, t.amount,
       t.currency, t.fee, t.fx_rate, t.price_source
FROM plan_executions e LEFT JOIN transactions t ON t.id = e.transaction_id
WHERE e.plan_id = %s
ORDER BY e.scheduled_date DESC
LIMIT %s
"""


class PlanHistory:
    """Reads a plan's row and its recent executions (read-only)."""

    def __init__(self, conn: connection) -> None:
        self._conn = conn

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._conn, self._conn.cursor() as cur:
            cur.execute(sql, params)
            names = [c.name for c in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def plan(self, plan_id: int) -> dict[str, Any] | None:
        """The plan's row in `recurring_investments`, or None."""
        found = self._rows(
            f"SELECT {_PLAN_COLUMNS} FROM recurring_investments WHERE id = %s", (plan_id,)
        )
        return found[0] if found else None

    def executions(self, plan_id: int, limit: int) -> list[dict[str, Any]]:
        """Its latest `limit` executions, newest first, each with its transaction's columns
        (None when nothing was bought)."""
        return self._rows(_EXECUTIONS, (plan_id, limit))
