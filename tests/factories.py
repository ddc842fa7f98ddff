"""Rows for tests: plans in `recurring_investments`, inserted in bulk, and their snapshots."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import psycopg2.extras
from psycopg2.extensions import connection

from common.domain.models import PlanSnapshot
from common.domain.schedule import Frequency

PLAN_DEFAULTS: dict[str, Any] = {
    "user_id": "user-1",
    "symbol": "AAPL",
    "exchange": "XNYS",
    "asset_currency": "USD",
    "amount": Decimal("100.0000"),
    "currency": "USD",
    "fee": Decimal("0"),
    "frequency": "monthly",
    "start_date": date(2026, 10, 27),
    "end_date": None,
    "max_runs": None,
    "runs_completed": 0,
    "next_run_date": date(2026, 11, 27),
    "fractional": True,
    "status": "active",
    "version": 1,
}
COLUMNS = tuple(PLAN_DEFAULTS)


def plan(**overrides: Any) -> dict[str, Any]:
    unknown = set(overrides) - set(COLUMNS) - {"id"}
    if unknown:
        raise TypeError(f"unknown plan columns: {sorted(unknown)}")
    return {**PLAN_DEFAULTS, **overrides}


def snapshot(plan_id: int = 1, **overrides: Any) -> PlanSnapshot:
    """Plan `plan_id` (a dict from `plan`, with `overrides`) as a chunk line holds it."""
    row = plan(**overrides)
    fields = {k: v for k, v in row.items() if k in PlanSnapshot.model_fields}
    fields["frequency"] = Frequency(row["frequency"])
    return PlanSnapshot(**fields, plan_id=plan_id, scheduled_date=row["next_run_date"])


def insert_plans(conn: connection, plans: list[dict[str, Any]]) -> list[int]:
    """Insert plans (dicts from `plan`); return their ids in order."""
    with conn.cursor() as cur:
        rows = psycopg2.extras.execute_values(
            cur,
            f"INSERT INTO recurring_investments ({', '.join(COLUMNS)}) VALUES %s RETURNING id",
            [tuple(p[c] for c in COLUMNS) for p in plans],
            page_size=5000,
            fetch=True,
        )
    if not conn.autocommit:
        conn.commit()
    return [r[0] for r in rows]


def many_plans(count: int, symbols: int = 10, **overrides: Any) -> list[dict[str, Any]]:
    """`count` plans spread over `symbols` symbols (S0000, S0001, ...), users u0.."""
    return [plan(symbol=f"S{i % symbols:04d}", user_id=f"u{i}", **overrides) for i in range(count)]


def scalar(conn: connection, sql: str, params: Any = ()) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
        return row[0] if row else None


def rows(conn: connection, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()
