"""Plans the planner found invalid: recorded `skipped` / `invalid_plan: ...`, in batches."""

from __future__ import annotations

from datetime import date

import psycopg2.extras
from psycopg2.extensions import connection

from common.adapters.store.sql import FINAL_OUTCOME
from common.domain.statuses import Execution

INVALID_BATCH = 5_000


class InvalidPlans:
    """Records invalid rows as `skipped` / `invalid_plan: ...`, in batches.

    Never overwrites a final outcome (a purchase, or an amount below minimum).
    """

    def __init__(self, conn: connection, run_id: str) -> None:
        self._conn = conn
        self._run_id = run_id
        self._pending: list[tuple[int, date, str]] = []
        self.count = 0

    def add(self, plan_id: int, scheduled_date: date | None, reason: str) -> None:
        if scheduled_date is None:  # not due on any date, so never selected; nothing to key
            return
        self._pending.append((plan_id, scheduled_date, reason))
        self.count += 1
        if len(self._pending) >= INVALID_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        with self._conn, self._conn.cursor() as cur:
            psycopg2.extras.execute_values(
                cur,
                f"""INSERT INTO plan_executions AS e
                       (plan_id, scheduled_date, run_id, status, reason)
                   SELECT v.plan_id, v.scheduled_date, v.run_id, '{Execution.SKIPPED}', v.reason
                   FROM (VALUES %s) AS v(plan_id, scheduled_date, reason, run_id)
                   ON CONFLICT (plan_id, scheduled_date) DO UPDATE
                   SET run_id = excluded.run_id, chunk_index = NULL,
                       status = '{Execution.SKIPPED}',
                       reason = excluded.reason, transaction_id = NULL,
                       attempts = e.attempts + 1, updated_at = now()
                   WHERE NOT {FINAL_OUTCOME}
                """,
                [(*row, self._run_id) for row in self._pending],
                template="(%s::bigint, %s::date, %s::text, %s::text)",
            )
        self._pending.clear()

    def close(self) -> None:
        self._conn.close()
