"""Invariants every test that buys something ends with (the `verify` command's oracle)."""

from __future__ import annotations

from psycopg2.extensions import connection

from tests.factories import rows


def assert_ledger_consistent(conn: connection) -> None:
    """Holdings equal the sum of their transactions; every purchase has exactly one transaction."""
    orphans = rows(
        conn,
        """SELECT e.plan_id, e.scheduled_date FROM plan_executions e
           LEFT JOIN transactions t ON t.id = e.transaction_id
           WHERE e.status = 'purchased' AND (t.id IS NULL OR t.plan_id <> e.plan_id
                 OR t.scheduled_date <> e.scheduled_date)""",
    )
    assert orphans == [], f"purchased executions without their transaction: {orphans}"
    unrecorded = rows(
        conn,
        """SELECT t.id FROM transactions t LEFT JOIN plan_executions e
               ON e.transaction_id = t.id AND e.status = 'purchased'
           WHERE t.plan_id IS NOT NULL AND e.plan_id IS NULL""",
    )
    assert unrecorded == [], f"transactions without a purchased execution: {unrecorded}"
    twice = rows(
        conn,
        "SELECT plan_id, scheduled_date FROM transactions GROUP BY 1, 2 HAVING count(*) > 1",
    )
    assert twice == [], f"plans bought twice: {twice}"
    drift = rows(
        conn,
        """SELECT a.id, a.quantity, a.cost_basis, t.quantity, t.cost
           FROM assets a LEFT JOIN (
               SELECT asset_id, sum(quantity) AS quantity,
                      sum(round(quantity * price + fee * fx_rate, 4)) AS cost
               FROM transactions GROUP BY asset_id) t ON t.asset_id = a.id
           WHERE a.quantity <> coalesce(t.quantity, 0) OR a.cost_basis <> coalesce(t.cost, 0)""",
    )
    assert drift == [], f"holdings that differ from their transactions: {drift}"
