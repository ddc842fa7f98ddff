"""`make bench-quotas`: issue 14's scenario, children sharing one provider key.

    python -m tests.bench.quotas --symbols 90 --per-minute 120 --children 3
    make bench-quotas QUOTA_SYMBOLS=90 PER_MINUTE=120

N symbols (10 plans each, USD, a few converted from JPY) planned into
exactly `children` chunks, every child started at once against the stub
limiting the Finnhub key to `per-minute` calls in any rolling minute. Prints
what the provider saw (429s, the most calls in any 10 s and 60 s, the
pricing time from the first call to the last against the floor calls / L)
and what the limiter cost each child; writes bench-quotas.json.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import time
from datetime import date
from pathlib import Path
from typing import Any

import psycopg2

from devkit import embedded_pg
from devkit.stubs.market_server import StubMarketServer
from tests.bench.main import (
    BUCKET,
    checked,
    environment,
    machine,
    measure,
    results_of,
    run_children,
    s3_client,
)
from tests.servers import MotoServer, fresh_database

DAY = date(2026, 11, 27)
RUN_ID = "XNYS-20261127"
PLANS_PER_SYMBOL = 10


def most_within(times: list[float], seconds: float) -> int:
    """The most calls in any window (t - seconds, t]."""
    times = sorted(times)
    return max(
        (i + 1 - bisect.bisect_right(times, t - seconds) for i, t in enumerate(times)), default=0
    )


def load(dsn: str, symbols: int) -> None:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO recurring_investments (user_id, symbol, amount, currency, frequency,"
            " start_date, next_run_date)"
            " SELECT 'u' || p, 'SYM' || lpad((p %% %s)::text, 5, '0'),"
            "  CASE WHEN p %% 50 = 0 THEN 15000 ELSE 100 END,"
            "  CASE WHEN p %% 50 = 0 THEN 'JPY' ELSE 'USD' END, 'monthly', %s, %s"
            " FROM generate_series(0, %s - 1) AS p",
            (symbols, DAY.replace(day=1), DAY, symbols * PLANS_PER_SYMBOL),
        )
    conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=90)
    parser.add_argument("--per-minute", type=int, default=120)
    parser.add_argument("--children", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-quotas.json"))
    args = parser.parse_args(argv)

    server = os.environ.get("DATABASE_URL") or embedded_pg.ensure_running()
    dsn = fresh_database(server, "worthy_bench_quotas")
    load(dsn, args.symbols)
    moto = MotoServer()
    stub = StubMarketServer(as_of=None).start()
    try:
        s3 = s3_client(moto.endpoint)
        s3.create_bucket(Bucket=BUCKET)
        chunk_size = -(-args.symbols // args.children) * PLANS_PER_SYMBOL
        env = {
            **environment(dsn, moto.endpoint, stub, chunk_size),
            "FINNHUB_CALLS_PER_MINUTE": str(args.per_minute),
        }
        checked(
            measure(["plan", "--run-date", DAY.isoformat(), "--submitter", "none"], env), "plan"
        )
        stub.set_rate_limit("finnhub", args.per_minute)
        started = time.perf_counter()
        children = run_children(list(range(args.children)), RUN_ID, env, args.children)
        wall = time.perf_counter() - started
        for index, child in enumerate(children):
            checked(child, f"executor (chunk {index})")
        results = [results_of(s3, RUN_ID, DAY, i) for i in range(args.children)]
        times = stub.calls_log.times("finnhub")
        took = max(times) - min(times)
        floor = len(times) * 60 / args.per_minute
        figures: dict[str, Any] = {
            "command": (
                f"make bench-quotas QUOTA_SYMBOLS={args.symbols} PER_MINUTE={args.per_minute}"
            ),
            "machine": machine(),
            "symbols": args.symbols,
            "per_minute": args.per_minute,
            "children": args.children,
            "finnhub_calls": len(times),
            "http_429": stub.faults_served("finnhub", "http_429"),
            "most_in_10s": most_within(times, 10),
            "allowed_in_10s": args.per_minute * 10 // 60 + 1,
            "most_in_60s": most_within(times, 60),
            "pricing_seconds": round(took, 1),
            "floor_seconds": round(floor, 1),
            "over_floor": round(took / floor, 3),
            "children_wall_seconds": round(wall, 1),
            "purchased": sum(r["purchased"] for r in results),
            "plans": sum(r["items"] for r in results),
            "api_calls": stub.call_counts()["total"],
            "per_child": [
                {k: r["timings_ms"].get(k) for k in ("price_ms", "quota_round_trips", "quota_ms")}
                for r in results
            ],
        }
    finally:
        stub.stop()
        moto.stop()
    args.out.write_text(json.dumps(figures, indent=1))
    print(json.dumps({k: v for k, v in figures.items() if k != "machine"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
