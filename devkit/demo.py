"""Demo plans for `make local-run`: deterministic, varied, and seeded once.

At least 100 symbols; USD, JPY and EUR plans; all six frequencies; whole-share
and fractional plans; fees; some paused or cancelled; a few invalid rows; one
symbol no provider knows, and one that Finnhub throttles so that Alpha
Vantage prices it. A different number of plans starts the demo over (`start_over`).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg2.extras
from psycopg2.extensions import connection

from common.domain.errors import ConfigError
from common.domain.schedule import Frequency
from common.domain.statuses import FINISHED_RUN, RunStatus

DEFAULT_PLANS = 2000
DEMO_USER_PREFIX = "demo-"
UNKNOWN_SYMBOL = "NOSUCH"
THROTTLED_SYMBOL = "TSLA"  # Finnhub answers 429 for it; Alpha Vantage prices it

TICKERS = [
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "GOOGL",
    "META",
    "BRK.B",
    "LLY",
    "AVGO",
    "JPM",
    "TSLA",
    "UNH",
    "XOM",
    "V",
    "MA",
    "JNJ",
    "PG",
    "HD",
    "COST",
    "MRK",
    "ABBV",
    "CVX",
    "CRM",
    "BAC",
    "NFLX",
    "AMD",
    "PEP",
    "KO",
    "TMO",
    "WMT",
    "ADBE",
    "LIN",
    "MCD",
    "CSCO",
    "ACN",
    "ABT",
    "ORCL",
    "DHR",
    "INTU",
    "WFC",
    "DIS",
    "TXN",
    "QCOM",
    "CAT",
    "VZ",
    "PM",
    "AMGN",
    "IBM",
    "NEE",
    "GE",
    "INTC",
    "UNP",
    "CMCSA",
    "LOW",
    "SPGI",
    "HON",
    "AMAT",
    "BKNG",
    "RTX",
    "NOW",
    "PFE",
    "UBER",
    "COP",
    "GS",
    "ISRG",
    "T",
    "ELV",
    "BLK",
    "SYK",
    "MS",
    "PLD",
    "TJX",
    "MDT",
    "AXP",
    "VRTX",
    "LRCX",
    "PGR",
    "SCHW",
    "CB",
    "MMC",
    "ADP",
    "BSX",
    "REGN",
    "DE",
    "C",
    "ETN",
    "MDLZ",
    "GILD",
    "LMT",
    "CI",
    "ADI",
    "BA",
    "SBUX",
    "KLAC",
    "ZTS",
    "PANW",
    "MU",
    "SO",
    "FI",
    "BMY",
    "ANET",
    "SNPS",
    "CME",
    "DUK",
    "SHW",
    "CDNS",
    "MO",
    "ICE",
    "TGT",
    "CL",
    "EQIX",
    "WM",
    "ITW",
]

# (plan currency, amount range, share of plans); asset prices are in USD.
CURRENCIES = (("USD", 25, 1000, 70), ("JPY", 3000, 150000, 20), ("EUR", 20, 900, 10))
INVALID_ROWS: tuple[dict[str, Any], ...] = (
    {"amount": Decimal("-50")},
    {"currency": "ZZZ"},
    {"frequency": "hourly"},
    {"symbol": ""},
    {"symbol": "AAPL'; DROP TABLE assets;--"},
)


def already_seeded(conn: connection) -> int:
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM recurring_investments WHERE user_id LIKE %s",
            (DEMO_USER_PREFIX + "%",),
        )
        count: int = cur.fetchone()[0]  # type: ignore[index]
        return count


def demo_plans(count: int, run_date: date, seed: int = 2026) -> list[dict[str, Any]]:
    """`count` plans (a few of them deliberately invalid), all due on or before `run_date`."""
    rng = random.Random(seed)
    symbols = [*TICKERS, UNKNOWN_SYMBOL]
    frequencies = list(Frequency)
    plans = []
    for i in range(count):
        currency, low, high, _ = rng.choices(CURRENCIES, weights=[c[3] for c in CURRENCIES])[0]
        amount = Decimal(rng.randrange(low * 100, high * 100)) / 100
        start = run_date - timedelta(days=rng.randrange(1, 400))
        plan = {
            "user_id": f"{DEMO_USER_PREFIX}{rng.randrange(max(1, count // 3)):05d}",
            "symbol": symbols[i % len(symbols)] if i < len(symbols) else rng.choice(symbols),
            "exchange": rng.choice(("XNYS", "XNYS", "XNYS", "XNAS")),
            "asset_currency": "USD",
            "amount": amount,
            "currency": currency,
            "fee": rng.choice((Decimal(0), Decimal(0), (amount / 100).quantize(Decimal("0.01")))),
            "frequency": frequencies[i % len(frequencies)].value,
            "start_date": start,
            # Most are due today; some missed a few days (an outage); they are bought once.
            "next_run_date": run_date - timedelta(days=rng.choice((0, 0, 0, 0, 1, 3, 7))),
            "fractional": rng.random() < 0.8,
            "status": rng.choices(("active", "paused", "cancelled"), weights=(95, 3, 2))[0],
        }
        plans.append(plan)
    for i, broken in enumerate(INVALID_ROWS):
        if i < len(plans):
            plans[-1 - i].update(broken, status="active")
    return plans


def seed(conn: connection, count: int, run_date: date) -> int:
    """Insert the demo plans unless they are there already; return how many exist."""
    existing = already_seeded(conn)
    if existing:
        return existing
    plans = demo_plans(count, run_date)
    columns = list(plans[0])
    with conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            f"INSERT INTO recurring_investments ({', '.join(columns)}) VALUES %s",
            [tuple(p[c] for c in columns) for p in plans],
            page_size=5000,
        )
    return len(plans)


# What a run leaves in the database, and the plans; provider_limits and
# provider_daily_calls stay: a real key's daily budget is spent whatever the demo.
DEMO_TABLES = (
    "plan_executions",
    "transactions",
    "assets",
    "run_quotes",
    "batch_chunks",
    "batch_runs",
    "recurring_investments",
)


def start_over(conn: connection, seeded: int, wanted: int) -> None:
    """Remove the demo's plans, runs, purchases and holdings, so that `wanted` plans can be
    seeded; refused (ConfigError) while a run is unfinished, or when the database holds
    plans that are not the demo's."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT run_id, status FROM batch_runs WHERE status <> ALL(%s) ORDER BY run_id",
            ([*FINISHED_RUN, RunStatus.MARKET_CLOSED],),
        )
        unfinished = cur.fetchall()
        cur.execute(
            "SELECT count(*) FROM recurring_investments WHERE user_id NOT LIKE %s",
            (DEMO_USER_PREFIX + "%",),
        )
        others: int = cur.fetchone()[0]  # type: ignore[index]
    why = f"the demo holds {seeded} plans, not {wanted}"
    if unfinished:
        run_id, status = unfinished[0]
        raise ConfigError(
            {
                "--plans": f"{why}, and run {run_id} is unfinished ({status}): finish it first "
                f"(the same command without --plans), or start over with `make reset-local`"
            }
        )
    if others:
        raise ConfigError(
            {
                "--plans": f"{why}, and the database holds {others} plans that are not the demo's; "
                "not starting over"
            }
        )
    with conn, conn.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(DEMO_TABLES)} RESTART IDENTITY CASCADE")
