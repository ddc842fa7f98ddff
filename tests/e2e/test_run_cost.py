"""report.json's cost: a run played on the local Batch emulator (planner, executor children,
finalizer, each its own process) reports its jobs' vCPU- and GB-seconds and a price."""

from __future__ import annotations

from decimal import Decimal

import psycopg2.extensions

from devkit.stubs.market_server import StubMarketServer
from tests.conftest import AwsStack
from tests.e2e.conftest import Runner
from tests.factories import insert_plans, many_plans, scalar
from tests.runs import run_report


def test_a_local_run_reports_its_jobs_usage_and_an_estimated_cost(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(30, symbols=6))
    done = cli(
        "plan",
        "--run-date",
        "2026-11-27",
        "--submitter",
        "local",
        env={"CHUNK_SIZE": "10", "LOCAL_PARALLELISM": "2", "FINNHUB_USD_PER_CALL": "0.001"},
    )
    assert done.returncode == 0, done.stderr
    report = run_report(aws)
    cost = report["cost"]
    chunks = scalar(db, "SELECT chunk_count FROM batch_runs")
    assert cost["jobs"] == {"planner": 1, "executor": chunks, "finalizer": 1}
    assert cost["unmeasured_jobs"] == 0
    assert Decimal(cost["vcpu_seconds"]) > 0 and Decimal(cost["gb_seconds"]) > 0
    # Sizes: the template's defaults (planner 2 vCPU, 4 GB; the others 0.25 vCPU, 0.5 GB),
    # and every job took less than Fargate's minimum, so each is billed a minute.
    small_jobs = chunks + 1
    billed_vcpu = 60 * (2 + small_jobs * Decimal("0.25"))
    billed_gb = 60 * (4 + small_jobs * Decimal("0.5"))
    assert Decimal(cost["billed_vcpu_seconds"]) == billed_vcpu
    assert Decimal(cost["billed_gb_seconds"]) == billed_gb
    fargate = (billed_vcpu * Decimal("0.04048") + billed_gb * Decimal("0.004445")) / 3600
    assert abs(Decimal(cost["fargate_usd"]) - fargate) <= Decimal("0.0000005")
    finnhub_calls = report["api_calls"]["finnhub"]
    assert finnhub_calls > 0
    assert Decimal(cost["providers_usd"]["finnhub"]) == finnhub_calls * Decimal("0.001")
    assert Decimal(cost["estimated_usd"]) == Decimal(cost["fargate_usd"]) + sum(
        Decimal(v) for v in cost["providers_usd"].values()
    )
    assert Decimal(cost["estimated_usd"]) > 0
