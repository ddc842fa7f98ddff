"""Benchmark data: a fresh database and N plans over S symbols, loaded with COPY."""

from __future__ import annotations

import io
import random
from datetime import date, timedelta

import psycopg2

CURRENCIES = (("USD", 10, 1000, 60), ("JPY", 1500, 150000, 25), ("EUR", 10, 900, 15))
COLUMNS = (
    "user_id",
    "symbol",
    "exchange",
    "asset_currency",
    "amount",
    "currency",
    "fee",
    "frequency",
    "start_date",
    "next_run_date",
    "fractional",
    "status",
    "version",
)
BATCH_ROWS = 100_000


def symbol(i: int) -> str:
    return f"SYM{i:05d}"


def load_plans(dsn: str, plans: int, symbols: int, due: date, seed: int = 8) -> None:
    """`plans` daily plans due on `due`, so the next market day finds them due again."""
    rng = random.Random(seed)
    users = max(1, plans // 3)
    weights = [c[3] for c in CURRENCIES]
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        for start in range(0, plans, BATCH_ROWS):
            buffer = io.StringIO()
            for i in range(start, min(plans, start + BATCH_ROWS)):
                currency, low, high, _ = rng.choices(CURRENCIES, weights)[0]
                amount = rng.randrange(low * 100, high * 100) / 100
                fee = round(amount / 100, 2) if i % 4 == 0 else 0
                row = (
                    f"bench-{i % users:07d}",
                    symbol(rng.randrange(symbols)),
                    "XNYS",
                    "USD",
                    f"{amount:.2f}",
                    currency,
                    f"{fee:.2f}",
                    "daily",
                    (due - timedelta(days=30)).isoformat(),
                    due.isoformat(),
                    "t" if i % 10 else "f",
                    "active",
                    "1",
                )
                buffer.write("\t".join(row) + "\n")
            buffer.seek(0)
            cur.copy_expert(f"COPY recurring_investments ({', '.join(COLUMNS)}) FROM STDIN", buffer)
    with conn, conn.cursor() as cur:
        cur.execute("ANALYZE recurring_investments")
    conn.close()
