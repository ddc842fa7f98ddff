"""`make bench`, chunk sizing: the default configuration against big chunks, and a child's
fixed cost.

On a database of its own, SIZING_PLANS daily plans over 2,000 symbols, provider rates
lifted, every chunk run by two children at a time (this machine's LOCAL_PARALLELISM):

    default     no CHUNK_SIZE: the planner sizes chunks from the work
    big chunks  CHUNK_SIZE = plans / 2: two chunks, one per child
    old default CHUNK_SIZE=500, the default before chunks were sized from the work

Throughput is purchases / the children's wall time (first start to last exit).
A child's fixed cost is start to exit of `execute` on a chunk whose plans are all
bought already, timed once the database server has finished vacuuming what the runs
before left (`settle`). Three figures:
  from source    no bytecode of the project's own modules, each compiled at every start
                 (how every figure before 2026-12-06, night, was taken: the development
                 machine sets PYTHONDONTWRITEBYTECODE, so no child left a .pyc behind)
  as the image   every shipped module compiled beforehand, as docker/Dockerfile's
                 compileall does: the child AWS Batch starts, and the target's figure.
                 Its price is stored, so it builds no market-data clients: a rerun's
                 start-up, everything but pricing and buying
  pricing        as the image, with the run's stored quote deleted before each start:
                 the child also builds its market-data clients and fetches one price
                 from the stub
The bytecode is removed again at the end, so nothing else runs with it unawares. Each
"as the image" run is paired with a run of the libraries' floor (LIBRARY_FLOOR): the
start-up no code of ours can cut. Their ratio, pair by pair, holds while this machine's
speed drifts, which the absolute figure does not (5 to 10% within an hour).
"""

from __future__ import annotations

import compileall
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import psycopg2

from tests.bench import data
from tests.bench.main import BUCKET, checked, measure, run_children
from tests.servers import fresh_database

DAYS = (date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25))
START = date(2026, 11, 20)
FIXED_COST_RUNS = 11
SETTLE_LIMIT_SECONDS = 60.0
ROOT = Path(__file__).resolve().parents[2]
# What the image ships (docker/Dockerfile copies these; the dev kit stays out).
SHIPPED = ("common", "entry", "planner", "executor", "finalizer", "ops")
# The libraries' own start-up: the interpreter, the imports every child needs (botocore,
# pydantic with pydantic-settings, psycopg2) loaded with the collector off and frozen, as
# entry/cli.py loads them, and the S3 client built as common/adapters/aws.py builds it.
LIBRARY_FLOOR = """
import gc
gc.disable()
import botocore.session, psycopg2.extras, pydantic_settings
from common.adapters.aws import BOTO_CONFIG
gc.freeze()
gc.enable()
botocore.session.get_session().create_client("s3", config=BOTO_CONFIG)
"""


def run_sizing(
    server: str, env: dict[str, str], s3: Any, plans: int, symbols: int
) -> dict[str, Any]:
    dsn = fresh_database(server, "worthy_bench_sizing")
    data.load_plans(dsn, plans, symbols, START)
    base = {**env, "DATABASE_URL": dsn, "LOCAL_PARALLELISM": "2"}
    base.pop("CHUNK_SIZE", None)
    configurations: tuple[tuple[str, dict[str, str]], ...] = (
        ("default", {}),
        # Half the plans and a tenth more: symbol-affine packing leaves some room per bin.
        ("big_chunks", {"CHUNK_SIZE": str(plans * 55 // 100)}),
        ("old_default", {"CHUNK_SIZE": "500"}),
    )
    figures: dict[str, Any] = {"plans": plans, "symbols": symbols}
    for (name, extra), day in zip(configurations, DAYS, strict=True):
        figures[name] = one_configuration(name, {**base, **extra}, s3, day)
    default, big = figures["default"], figures["big_chunks"]
    figures["big_over_default"] = round(
        big["purchases_per_second"] / default["purchases_per_second"], 2
    )
    figures["fixed_cost"] = fixed_cost(server, base)
    return figures


def one_configuration(name: str, env: dict[str, str], s3: Any, day: date) -> dict[str, Any]:
    run_id = f"XNYS-{day:%Y%m%d}"
    print(f"sizing, {name}: planning {run_id} ...", flush=True)
    checked(measure(["plan", "--run-date", day.isoformat(), "--submitter", "none"], env), name)
    manifest = json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"bench/XNYS/{day.isoformat()}/{run_id}/run.json")[
            "Body"
        ].read()
    )
    count = manifest["chunk_count"]
    print(f"sizing, {name}: {count} chunk(s), two children at a time ...", flush=True)
    started = time.perf_counter()
    children = run_children(list(range(count)), run_id, env, parallel=2)
    wall = time.perf_counter() - started
    for index, child in enumerate(children):
        checked(child, f"{name}: chunk {index}")
    purchased = 0
    for index in range(count):
        key = f"bench/XNYS/{day.isoformat()}/{run_id}/results/{index:05d}.json"
        purchased += json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["purchased"]
    return {
        "chunks": count,
        "purchased": purchased,
        "seconds": round(wall, 2),
        "purchases_per_second": round(purchased / wall),
        "child_seconds": round(sum(c.seconds for c in children), 1),
    }


def fixed_cost(server: str, env: dict[str, str]) -> dict[str, Any]:
    """Start to exit of a child, as Batch starts one (MANIFEST_URI, the index in the
    environment), on a one-plan chunk it has bought already (the module's docstring).

    Not the smoke test's canary chunk (this page measured that until 2026-12-06): the
    canary now proves the network with a quote and an FX rate, which is not start-up."""
    dsn = fresh_database(server, "worthy_bench_fixed_cost")
    data.load_plans(dsn, 1, 1, START)
    child = {**env, "DATABASE_URL": dsn}
    day = DAYS[0]
    run_id = f"XNYS-{day:%Y%m%d}"
    checked(measure(["plan", "--run-date", day.isoformat(), "--submitter", "none"], child), "plan")
    uri = f"s3://{BUCKET}/bench/XNYS/{day.isoformat()}/{run_id}/run.json"
    child = {**child, "MANIFEST_URI": uri, "CHUNK_INDEX": "0"}
    checked(measure(["execute"], child), "the one plan bought")
    waited = settle(server)
    print(
        f"sizing: a child's fixed cost, {FIXED_COST_RUNS} runs each from source, as the "
        f"image runs it, and pricing (the server settled in {waited:.1f} s) ...",
        flush=True,
    )
    packages = [ROOT / name for name in SHIPPED]
    try:
        drop_bytecode(packages)
        from_source = timed(child | {"PYTHONDONTWRITEBYTECODE": "1"})
        for package in packages:
            # Timestamped, not the image's unchecked hashes: a .pyc left by a killed run
            # is then ignored once its module is edited.
            compileall.compile_dir(package, quiet=1)
        compiled, floor = timed_with_floor(child)
        pricing = timed(child, before=lambda: forget_quotes(dsn, run_id))
    finally:
        drop_bytecode(packages)
    return {
        "settle_seconds": round(waited, 1),
        **compiled,
        "from_source": from_source,
        "pricing": pricing,
        "library_floor": floor,
    }


def timed(env: dict[str, str], before: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """`execute` FIXED_COST_RUNS times, `before` run ahead of each (not timed)."""
    seconds = []
    for _ in range(FIXED_COST_RUNS):
        before()
        seconds.append(checked(measure(["execute"], env), "fixed cost").seconds)
    return summary(seconds)


def timed_with_floor(env: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`execute` and the libraries' floor in turn, FIXED_COST_RUNS times each; the child's
    figures carry `over_floor`, the median of the pairs' ratios."""
    child, floor = [], []
    program = [sys.executable, "-c", LIBRARY_FLOOR]
    for _ in range(FIXED_COST_RUNS):
        child.append(checked(measure(["execute"], env), "fixed cost").seconds)
        floor.append(checked(measure([], env, program), "the libraries' floor").seconds)
    ratios = [c / f for c, f in zip(child, floor, strict=True)]
    return {**summary(child), "over_floor": round(statistics.median(ratios), 2)}, summary(floor)


def summary(seconds: list[float]) -> dict[str, Any]:
    return {
        "runs": [round(s, 3) for s in seconds],
        "min_seconds": round(min(seconds), 3),
        "median_seconds": round(statistics.median(seconds), 3),
    }


def drop_bytecode(packages: list[Path]) -> None:
    for cache in [c for package in packages for c in package.rglob("__pycache__")]:
        shutil.rmtree(cache)


def forget_quotes(dsn: str, run_id: str) -> None:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM run_quotes WHERE run_id = %s", (run_id,))
    conn.close()


def settle(server: str, limit: float = SETTLE_LIMIT_SECONDS) -> float:
    """Let the server finish the benchmark's own leftovers before a child is timed: a
    checkpoint, then until no autovacuum worker runs (the runs before leave 100,000s of
    dead rows behind, and a vacuum on one of two cores is not a child's cost). Seconds
    waited; at most `limit`, then it measures anyway."""
    started = time.perf_counter()
    conn = psycopg2.connect(server)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CHECKPOINT")
            while time.perf_counter() - started < limit:
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
                )
                if cur.fetchone() == (0,):
                    break
                time.sleep(0.5)
    finally:
        conn.close()
    return time.perf_counter() - started


def rows(f: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Lines for the benchmark's table."""
    found = []
    for name, label in (
        ("default", "default settings"),
        ("big_chunks", "two big chunks"),
        ("old_default", "old default CHUNK_SIZE=500"),
    ):
        c = f[name]
        found.append(
            (
                f"sizing, {f['plans']:,} plans, {label}: purchases/s",
                f"{c['purchases_per_second']:,}",
                f"{c['chunks']} chunk(s), 2 at a time, {c['seconds']} s",
            )
        )
    found.append(("sizing: big chunks / default", f"{f['big_over_default']}x", "target <= 1.5x"))
    cost = f["fixed_cost"]
    source = cost["from_source"]
    found.append(
        (
            "executor: a child's fixed cost, from source",
            f"{source['median_seconds']} s",
            f"min {source['min_seconds']} s of {len(source['runs'])}; no bytecode of ours",
        )
    )
    found.append(
        (
            "executor: a child's fixed cost, as in the image",
            f"{cost['median_seconds']} s",
            f"min {cost['min_seconds']} s of {len(cost['runs'])}; bytecode; target < 0.4 s",
        )
    )
    floor = cost["library_floor"]
    found.append(
        (
            "executor: the libraries' floor (imports, S3 client)",
            f"{floor['median_seconds']} s",
            f"min {floor['min_seconds']} s of {len(floor['runs'])}, in turn with the child",
        )
    )
    found.append(
        (
            "executor: a child's fixed cost / the floor",
            f"{cost['over_floor']}x",
            "median of the pairs; what our code adds to the libraries' start-up",
        )
    )
    pricing = cost["pricing"]
    found.append(
        (
            "executor: the same, pricing its one symbol",
            f"{pricing['median_seconds']} s",
            f"min {pricing['min_seconds']} s of {len(pricing['runs'])}; clients built, one call",
        )
    )
    return found
