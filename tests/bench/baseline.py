"""The seed system's way, for comparison: one plan at a time.

Per plan: one quote call, one FX call, one database transaction (insert the
transaction, upsert the holding, move the schedule, record the execution).
No fixed delays between calls (the seed slept; that would only make it look
worse). Runs on a sample of the same plans, in a database of its own.
"""

from __future__ import annotations

import time
from datetime import date
from decimal import ROUND_DOWN, Decimal

import psycopg2
import requests

from devkit.stubs.market_server import StubMarketServer


def copy_sample(source_dsn: str, target_dsn: str, sample: int, due: date) -> None:
    """The first `sample` plans, due on `due` whatever the runs did to them since."""
    src, dst = psycopg2.connect(source_dsn), psycopg2.connect(target_dsn)
    with src.cursor() as cur:
        cur.execute(
            "SELECT user_id, symbol, exchange, asset_currency, amount, currency, fee, frequency,"
            " start_date, %s::date, fractional FROM recurring_investments ORDER BY id LIMIT %s",
            (due, sample),
        )
        rows = cur.fetchall()
    with dst, dst.cursor() as cur:
        cur.executemany(
            "INSERT INTO recurring_investments (user_id, symbol, exchange, asset_currency, amount,"
            " currency, fee, frequency, start_date, next_run_date, fractional)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    src.close()
    dst.close()


def run_baseline(dsn: str, stub: StubMarketServer, run_date: date) -> tuple[int, float]:
    """Buy every due plan of the sample database the seed's way; return (plans, seconds)."""
    session = requests.Session()
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, user_id, symbol, exchange, amount, currency, fee, fractional"
            " FROM recurring_investments WHERE next_run_date <= %s ORDER BY id",
            (run_date,),
        )
        plans = cur.fetchall()
    conn.rollback()
    started = time.perf_counter()
    for plan_id, user_id, symbol, exchange, amount, currency, fee, fractional in plans:
        quote = session.get(
            f"{stub.finnhub_url}/quote",
            params={"symbol": symbol},
            headers={"X-Finnhub-Token": stub.finnhub_key},
            timeout=10,
        ).json()
        rates = session.get(
            f"{stub.exchange_rate_url}/{stub.exchange_rate_key}/latest/{currency}", timeout=10
        ).json(parse_float=Decimal)
        price = Decimal(str(quote["c"]))
        fx = Decimal(rates["conversion_rates"]["USD"]) if currency != "USD" else Decimal(1)
        places = Decimal("0.000001") if fractional else Decimal(1)
        quantity = ((amount - fee) * fx / price).quantize(places, rounding=ROUND_DOWN)
        cost = (quantity * price + fee * fx).quantize(Decimal("0.0001"))
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO assets (user_id, symbol, exchange, currency, quantity, cost_basis)"
                " VALUES (%s, %s, %s, 'USD', %s, %s) ON CONFLICT (user_id, symbol, exchange)"
                " DO UPDATE SET quantity = assets.quantity + excluded.quantity,"
                " cost_basis = assets.cost_basis + excluded.cost_basis RETURNING id",
                (user_id, symbol, exchange, quantity, cost),
            )
            asset_id = cur.fetchone()[0]  # type: ignore[index]
            cur.execute(
                "INSERT INTO transactions (user_id, asset_id, plan_id, run_id, trade_date,"
                " scheduled_date, quantity, price, price_currency, amount, currency, fee,"
                " fx_rate, price_source, price_time) VALUES (%s, %s, %s, 'seed', %s, %s, %s, %s,"
                " 'USD', %s, %s, %s, %s, 'finnhub', now()) RETURNING id",
                (
                    user_id,
                    asset_id,
                    plan_id,
                    run_date,
                    run_date,
                    quantity,
                    price,
                    amount,
                    currency,
                    fee,
                    fx,
                ),
            )
            tx_id = cur.fetchone()[0]  # type: ignore[index]
            cur.execute(
                "UPDATE recurring_investments SET next_run_date = next_run_date + 1,"
                " runs_completed = runs_completed + 1 WHERE id = %s",
                (plan_id,),
            )
            cur.execute(
                "INSERT INTO plan_executions (plan_id, scheduled_date, run_id, status,"
                " transaction_id) VALUES (%s, %s, 'seed', 'purchased', %s)",
                (plan_id, run_date, tx_id),
            )
    elapsed = time.perf_counter() - started
    conn.close()
    session.close()
    return len(plans), elapsed
