"""`make bench`: both stages measured against the seed-style baseline and the COPY floor.

    python -m tests.bench.main --plans 200000 --symbols 2000

Two runs over the same daily plans, on consecutive market days:
  run 1  plan, then ONE executor child alone on chunk 0 (the per-child figure)
  run 2  plan (every plan due again) + every chunk with two children in
         parallel + finalize: the end-to-end figure
then the seed-style baseline on a sample of the same plans, and the COPY
floor for run 1's chunk. Prints a table; writes bench-results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import psycopg2

from devkit import embedded_pg
from devkit.stubs.market_server import StubMarketServer
from tests.bench import baseline, data, floor
from tests.servers import MotoServer, fresh_database

# Consecutive market days. The plans are daily, so each run finds them due again.
DAY_0, DAY_1, DAY_2 = date(2026, 11, 20), date(2026, 11, 23), date(2026, 11, 24)
SMALL_CHUNK = 10_000
BUCKET = "worthy-bench"
CLI = [sys.executable, "-m", "entry.cli"]


@dataclass
class Measured:
    code: int
    seconds: float
    peak_rss_mb: float
    output: str


def measure(argv: list[str], env: dict[str, str], program: list[str] = CLI) -> Measured:
    """Run `worthy-batch ARGV` (or `program`); wall time and the process's own peak RSS
    (wait4)."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen([*program, *argv], env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return Measured(process.returncode, seconds, usage.ru_maxrss / 1024, out.read()[-4000:])


def run_children(
    indexes: list[int], run_id: str, env: dict[str, str], parallel: int
) -> list[Measured]:
    """Every chunk, `parallel` at a time, each child measured (threads only wait)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(index: int) -> Measured:
        return measure(["execute", "--run-id", run_id, "--chunk-index", str(index)], env)

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, indexes))


def checked(result: Measured, what: str) -> Measured:
    if result.code != 0:
        raise SystemExit(f"bench: {what} exited {result.code}:\n{result.output}")
    return result


def results_of(s3: Any, run_id: str, day: date, index: int) -> dict[str, Any]:
    key = f"bench/XNYS/{day.isoformat()}/{run_id}/results/{index:05d}.json"
    document: dict[str, Any] = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=200_000)
    parser.add_argument("--symbols", type=int, default=2_000)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=1_000, help="plans for the seed baseline")
    parser.add_argument(
        "--sizing-plans", type=int, default=100_000, help="plans for the chunk-sizing comparison"
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument(
        "--only-sizing", action="store_true", help="only the chunk-sizing comparison"
    )
    args = parser.parse_args(argv)

    server = os.environ.get("DATABASE_URL") or embedded_pg.ensure_running()
    figures: dict[str, Any] = {
        "command": f"make bench PLANS={args.plans} SYMBOLS={args.symbols}",
        "machine": machine(),
        "plans": args.plans,
        "symbols": args.symbols,
        "chunk_size": args.chunk_size,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(
        f"bench: {args.plans:,} plans over {args.symbols:,} symbols, chunks of "
        f"{args.chunk_size:,}; {figures['machine']['cpus']} CPUs",
        flush=True,
    )
    dsn = fresh_database(server, "worthy_bench")
    started = time.perf_counter()
    data.load_plans(dsn, args.plans, args.symbols, DAY_0)
    figures["generate_seconds"] = round(time.perf_counter() - started, 1)

    moto = MotoServer()
    stub = StubMarketServer().start()
    try:
        s3 = s3_client(moto.endpoint)
        s3.create_bucket(Bucket=BUCKET)
        env = environment(dsn, moto.endpoint, stub, args.chunk_size)
        if args.only_sizing:
            from tests.bench.sizing import rows as sizing_rows
            from tests.bench.sizing import run_sizing

            sizing = run_sizing(server, env, s3, args.sizing_plans, args.symbols)
            for name, value, note in sizing_rows(sizing):
                print(f"{name:<60}  {value:>10}  {note}")
            return 0
        figures.update(run_zero({**env, "CHUNK_SIZE": str(SMALL_CHUNK)}, s3))
        figures.update(run_one(env, stub, s3))
        figures.update(run_two(env, stub, s3))
        figures.update(compare(server, dsn, stub, args.sample, figures))
        from tests.bench.sizing import run_sizing

        figures["sizing"] = run_sizing(server, env, s3, args.sizing_plans, args.symbols)
    finally:
        stub.stop()
        moto.stop()
    figures["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.out.write_text(json.dumps(figures, indent=1))
    print_table(figures)
    print(f"\nfigures written to {args.out}")
    return 0


def s3_client(endpoint: str) -> Any:
    """S3 on the benchmark's moto server."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def environment(dsn: str, endpoint: str, stub: StubMarketServer, chunk_size: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MANIFEST_BUCKET": BUCKET,
        "MANIFEST_PREFIX": "bench",
        "CHUNK_SIZE": str(chunk_size),
        "LOG_FORMAT": "json",
        **stub.environment(),
        # The stub has no rate limit; real providers' limits would dominate otherwise.
        "FINNHUB_CALLS_PER_MINUTE": "1000000",
        "ALPHA_VANTAGE_CALLS_PER_MINUTE": "1000000",
        "EXCHANGE_RATE_CALLS_PER_MINUTE": "1000000",
    }


def run_zero(env: dict[str, str], s3: Any) -> dict[str, Any]:
    """A 10,000-plan chunk: the executor's memory at the size the targets name."""
    print(f"run 0: one child on a {SMALL_CHUNK:,}-plan chunk ...", flush=True)
    checked(
        measure(["plan", "--run-date", DAY_0.isoformat(), "--submitter", "none"], env),
        "planner (run 0)",
    )
    child = checked(
        measure(["execute", "--run-id", "XNYS-20261120", "--chunk-index", "0"], env),
        "executor (run 0, chunk 0)",
    )
    result = results_of(s3, "XNYS-20261120", DAY_0, 0)
    return {
        "small_chunk": {
            "plans": result["items"],
            "seconds": round(child.seconds, 2),
            "peak_rss_mb": round(child.peak_rss_mb),
        }
    }


def run_one(env: dict[str, str], stub: StubMarketServer, s3: Any) -> dict[str, Any]:
    print("run 1: planning ...", flush=True)
    plan = checked(
        measure(["plan", "--run-date", DAY_1.isoformat(), "--submitter", "none"], env),
        "planner (run 1)",
    )
    stub.reset_calls()
    print("run 1: one executor child on chunk 0 ...", flush=True)
    child = checked(
        measure(["execute", "--run-id", "XNYS-20261123", "--chunk-index", "0"], env),
        "executor (run 1, chunk 0)",
    )
    result = results_of(s3, "XNYS-20261123", DAY_1, 0)
    return {
        "run1_planner": {"seconds": round(plan.seconds, 2), "peak_rss_mb": round(plan.peak_rss_mb)},
        "one_child": {
            "plans": result["items"],
            "purchased": result["purchased"],
            "seconds": round(child.seconds, 2),
            "peak_rss_mb": round(child.peak_rss_mb),
            "purchases_per_second": round(result["purchased"] / child.seconds),
            "db_round_trips": result["timings_ms"]["db_round_trips"],
            "timings_ms": result["timings_ms"],
            "api_calls": sum(result["api_calls"].values()),
            "limiter": limiter_share(result, child.seconds),
        },
    }


def run_two(env: dict[str, str], stub: StubMarketServer, s3: Any) -> dict[str, Any]:
    stub.reset_calls()
    print("run 2: plan + two parallel children over every chunk + finalize ...", flush=True)
    started = time.perf_counter()
    plan = checked(
        measure(["plan", "--run-date", DAY_2.isoformat(), "--submitter", "none"], env),
        "planner (run 2)",
    )
    run_id = "XNYS-20261124"
    chunks = json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"bench/XNYS/{DAY_2.isoformat()}/{run_id}/run.json")[
            "Body"
        ].read()
    )
    children = run_children(list(range(chunks["chunk_count"])), run_id, env, parallel=2)
    for index, child in enumerate(children):
        checked(child, f"executor (run 2, chunk {index})")
    final = checked(measure(["finalize", "--run-id", run_id], env), "finalize")
    wall = time.perf_counter() - started
    results = [results_of(s3, run_id, DAY_2, i) for i in range(chunks["chunk_count"])]
    purchased = sum(r["purchased"] for r in results)
    minimum = minimum_calls(env["DATABASE_URL"])
    return {
        "planner": {
            "due_plans": chunks["item_count"],
            "chunks": chunks["chunk_count"],
            "seconds": round(plan.seconds, 2),
            "peak_rss_mb": round(plan.peak_rss_mb),
            "plans_per_second": round(chunks["item_count"] / plan.seconds),
        },
        "two_children": {
            "children": len(children),
            "purchased": purchased,
            "per_child_purchases_per_second": [
                round(r["purchased"] / c.seconds) for r, c in zip(results, children, strict=True)
            ],
            "peak_rss_mb": [round(c.peak_rss_mb) for c in children],
            "db_round_trips": [r["timings_ms"]["db_round_trips"] for r in results],
            "limiter": [
                limiter_share(r, c.seconds) for r, c in zip(results, children, strict=True)
            ],
        },
        "finalize_seconds": round(final.seconds, 2),
        "end_to_end_seconds": round(wall, 1),
        "api_calls": {
            "made": stub.calls(),
            "minimum": minimum,
            "by_provider": {p: stub.calls(p) for p in ("finnhub", "alphavantage", "exchangerate")},
        },
    }


def limiter_share(result: dict[str, Any], seconds: float) -> dict[str, Any]:
    """What the shared provider limiter cost a child: its round trips to the database (leases,
    budget counts) and their time, against the child's whole run and its pricing."""
    timings = result["timings_ms"]
    spent = timings.get("quota_ms", 0)
    return {
        "round_trips": timings.get("quota_round_trips", 0),
        "ms": spent,
        "wait_ms": timings.get("quota_wait_ms", 0),
        "share_of_child": round(spent / (seconds * 1000), 4),
        "share_of_pricing": round(spent / max(1, timings["price_ms"]), 4),
    }


def minimum_calls(dsn: str) -> int:
    """Distinct symbols plus distinct FX bases (plan currencies that differ from the asset's)."""
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(DISTINCT symbol), count(DISTINCT currency) FILTER"
            " (WHERE currency <> asset_currency) FROM recurring_investments"
        )
        symbols, bases = cur.fetchone()  # type: ignore[misc]
    conn.close()
    return int(symbols) + int(bases)


def compare(
    server: str, dsn: str, stub: StubMarketServer, sample: int, figures: dict[str, Any]
) -> dict[str, Any]:
    print(f"baseline: the seed's way on {sample:,} plans ...", flush=True)
    seed_dsn = fresh_database(server, "worthy_bench_seed")
    baseline.copy_sample(dsn, seed_dsn, sample, DAY_1)
    plans, seconds = baseline.run_baseline(seed_dsn, stub, DAY_1)
    seed_rate = plans / seconds
    print("floor: COPY of run 1's purchase rows ...", flush=True)
    floor_dsn = fresh_database(server, "worthy_bench_floor")
    copied, floor_seconds = floor.run_floor(dsn, floor_dsn, "XNYS-20261123", 0)
    floor_rate = copied / floor_seconds
    ours = figures["one_child"]["purchases_per_second"]
    return {
        "baseline": {
            "plans": plans,
            "seconds": round(seconds, 2),
            "purchases_per_second": round(seed_rate, 1),
        },
        "floor": {
            "rows": copied,
            "seconds": round(floor_seconds, 2),
            "purchases_per_second": round(floor_rate),
        },
        "ratios": {
            "ours_over_baseline": round(ours / seed_rate, 1),
            "floor_over_ours": round(floor_rate / ours, 2),
        },
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def print_table(f: dict[str, Any]) -> None:
    one, two, planner = f["one_child"], f["two_children"], f["planner"]
    rows = [
        (
            "planner: due plans/s",
            f"{planner['plans_per_second']:,}",
            f"{planner['due_plans']:,} plans in {planner['seconds']} s",
        ),
        ("planner: peak RSS", f"{planner['peak_rss_mb']} MB", f"{planner['chunks']} chunks"),
        (
            "executor, one child: purchases/s",
            f"{one['purchases_per_second']:,}",
            f"{one['purchased']:,} in {one['seconds']} s",
        ),
        (
            "executor, one child: peak RSS",
            f"{one['peak_rss_mb']} MB",
            f"{one['plans']:,}-plan chunk",
        ),
        (
            "executor, one child: DB round trips",
            f"{one['db_round_trips']:,}",
            f"{one['plans']:,} plans, WRITE_BATCH_SIZE=1000",
        ),
        (
            "executor, one child: provider limiter",
            f"{one['limiter']['ms']} ms",
            f"{one['limiter']['round_trips']} round trips; {one['limiter']['share_of_child']:.2%} "
            f"of the child, {one['limiter']['share_of_pricing']:.2%} of pricing",
        ),
        (
            "executor, 10,000-plan chunk: peak RSS",
            f"{f['small_chunk']['peak_rss_mb']} MB",
            f"{f['small_chunk']['plans']:,} plans in {f['small_chunk']['seconds']} s",
        ),
        (
            "executor, two children: purchases/s each",
            ", ".join(f"{r:,}" for r in two["per_child_purchases_per_second"]),
            f"{two['purchased']:,} purchases",
        ),
        ("executor, two children: peak RSS", ", ".join(f"{r} MB" for r in two["peak_rss_mb"]), ""),
        (
            "executor, two children: provider limiter",
            ", ".join(f"{q['ms']} ms" for q in two["limiter"]),
            ", ".join(f"{q['round_trips']} round trips" for q in two["limiter"]),
        ),
        (
            "API calls (run 2) / minimum",
            f"{f['api_calls']['made']} / {f['api_calls']['minimum']}",
            json.dumps(f["api_calls"]["by_provider"]),
        ),
        (
            "seed-style baseline: purchases/s",
            f"{f['baseline']['purchases_per_second']:,}",
            f"{f['baseline']['plans']:,} plans",
        ),
        ("ours / baseline", f"{f['ratios']['ours_over_baseline']}x", "target >= 50x"),
        (
            "COPY floor: rows/s",
            f"{f['floor']['purchases_per_second']:,}",
            f"{f['floor']['rows']:,} rows",
        ),
        ("floor / ours", f"{f['ratios']['floor_over_ours']}x", "target <= 4x"),
        (
            "end to end (plan + 2 children + finalize)",
            f"{f['end_to_end_seconds']} s",
            f"{two['purchased']:,} purchases",
        ),
    ]
    if "sizing" in f:
        from tests.bench.sizing import rows as sizing_rows

        rows += sizing_rows(f["sizing"])
    width = max(len(r[0]) for r in rows)
    print()
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>22}  {note}")


if __name__ == "__main__":
    raise SystemExit(main())
