"""The floor: COPY the executor's purchase rows into empty copies of the same tables.

No pricing, no decisions, no checks: just the bytes into PostgreSQL. Our
executor can only approach this; the ratio says how close it gets.
"""

from __future__ import annotations

import io
import time

import psycopg2

TABLES = (
    ("assets", "id, user_id, symbol, exchange, currency, quantity, cost_basis"),
    (
        "transactions",
        "id, user_id, asset_id, plan_id, run_id, type, trade_date, scheduled_date,"
        " quantity, price, price_currency, amount, currency, fee, fx_rate, price_source,"
        " price_time",
    ),
    (
        "plan_executions",
        "plan_id, scheduled_date, run_id, chunk_index, status, reason, transaction_id",
    ),
)


def run_floor(source_dsn: str, target_dsn: str, run_id: str, chunk_index: int) -> tuple[int, float]:
    """COPY one chunk's purchase rows; return (purchases, seconds for the COPYs and commit)."""
    src = psycopg2.connect(source_dsn)
    filters = {
        "assets": f"id IN (SELECT asset_id FROM transactions WHERE run_id = '{run_id}' AND plan_id"
        f" IN (SELECT plan_id FROM plan_executions WHERE run_id = '{run_id}'"
        f" AND chunk_index = {chunk_index} AND status = 'purchased'))",
        "transactions": f"id IN (SELECT transaction_id FROM plan_executions WHERE run_id ="
        f" '{run_id}' AND chunk_index = {chunk_index} AND status = 'purchased')",
        "plan_executions": f"run_id = '{run_id}' AND chunk_index = {chunk_index}"
        " AND status = 'purchased'",
    }
    dumps = {}
    with src.cursor() as cur:
        for table, columns in TABLES:
            out = io.StringIO()
            cur.copy_expert(
                f"COPY (SELECT {columns} FROM {table} WHERE {filters[table]}) TO STDOUT", out
            )
            dumps[table] = out.getvalue()
    src.close()
    purchases = dumps["plan_executions"].count("\n")
    dst = psycopg2.connect(target_dsn)
    started = time.perf_counter()
    with dst, dst.cursor() as cur:
        for table, columns in TABLES:
            cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", io.StringIO(dumps[table]))
    elapsed = time.perf_counter() - started
    dst.close()
    return purchases, elapsed
