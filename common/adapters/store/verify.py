"""The ledger's invariants, checked in SQL (`worthy-batch verify`, and the tests).

1. every `purchased` execution points at exactly one transaction of the same plan and date
2. every transaction of a plan is pointed at by a `purchased` execution
3. each holding equals the sum of its transactions (quantity, and cost basis rounded
   per transaction as the executor adds it)
4. no plan is due again on or before a date it was bought for
"""

from __future__ import annotations

from psycopg2.extensions import connection

from common.domain.statuses import Execution

CHECKS: list[tuple[str, str]] = [
    (
        "purchased execution without its transaction",
        f"""SELECT format('plan %%s on %%s (run %%s)', e.plan_id, e.scheduled_date, e.run_id)
           FROM plan_executions e LEFT JOIN transactions t ON t.id = e.transaction_id
           WHERE e.status = '{Execution.PURCHASED}'
             AND (%(run)s::text IS NULL OR e.run_id = %(run)s)
             AND (t.id IS NULL OR t.plan_id IS DISTINCT FROM e.plan_id
                  OR t.scheduled_date IS DISTINCT FROM e.scheduled_date)""",
    ),
    (
        "transaction without a purchased execution",
        f"""SELECT format('transaction %%s (plan %%s on %%s)', t.id, t.plan_id, t.scheduled_date)
           FROM transactions t
           WHERE t.plan_id IS NOT NULL AND (%(run)s::text IS NULL OR t.run_id = %(run)s)
             AND NOT EXISTS (SELECT 1 FROM plan_executions e WHERE e.transaction_id = t.id
                             AND e.status = '{Execution.PURCHASED}' AND e.plan_id = t.plan_id
                             AND e.scheduled_date = t.scheduled_date)""",
    ),
    (
        "holding differs from its transactions",
        """SELECT format('asset %%s (%%s %%s): quantity %%s vs %%s, cost basis %%s vs %%s', a.id,
                         a.user_id, a.symbol, a.quantity, coalesce(s.quantity, 0),
                         a.cost_basis, coalesce(s.cost, 0))
           FROM assets a LEFT JOIN (
               SELECT asset_id, sum(quantity) AS quantity,
                      sum(round(quantity * price + fee * fx_rate, 4)) AS cost
               FROM transactions GROUP BY asset_id) s ON s.asset_id = a.id
           WHERE (%(run)s::text IS NULL
                  OR a.id IN (SELECT asset_id FROM transactions WHERE run_id = %(run)s))
             AND (a.quantity <> coalesce(s.quantity, 0) OR a.cost_basis <> coalesce(s.cost, 0))""",
    ),
    (
        "plan due again on or before a date it was bought for",
        """SELECT format('plan %%s: next run %%s, bought for %%s', r.id, r.next_run_date,
                         max(t.scheduled_date))
           FROM recurring_investments r JOIN transactions t ON t.plan_id = r.id
           WHERE (%(run)s::text IS NULL OR t.run_id = %(run)s)
           GROUP BY r.id, r.next_run_date
           HAVING r.next_run_date <= max(t.scheduled_date)""",
    ),
]


def violations(conn: connection, run_id: str | None = None) -> list[str]:
    found: list[str] = []
    with conn.cursor() as cur:
        for name, sql in CHECKS:
            cur.execute(sql, {"run": run_id})
            found.extend(f"{name}: {row[0]}" for row in cur.fetchall())
    conn.rollback()
    return found
