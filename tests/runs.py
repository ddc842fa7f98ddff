"""Driving a run from a test, one definition each: plan a day in this process, a child's
environment and arguments, and the report the finalizer wrote.

Planning is usually only a test's setup, so it runs in-process through the
planner's service function; the planner's own tests drive it through the CLI
(tests/e2e/test_plan_cli.py) or with moto's Batch (tests/integration/test_planner.py).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from functools import partial
from typing import Any

from common.adapters.db import connect
from common.adapters.manifest_store import ManifestStore
from common.adapters.store.unit_of_work import PostgresStores
from common.adapters.submitters import JobSubmitter
from common.adapters.submitters.none import NoneSubmitter
from common.domain.calendar import resolve_run_day
from common.domain.chunking import ChunkPolicy
from common.domain.run_key import RunKey
from planner.request import PlanRequest
from planner.service import PlannerDeps, PlanResult, plan_run
from tests.conftest import AwsStack

PREFIX = "recurring-investments"


def plan_in_process(
    dsn: str,
    store: ManifestStore,
    bucket: str,
    run_date: date,
    chunk_size: int,
    *,
    market: str = "XNYS",
    submitter: JobSubmitter | None = None,
    clock: Callable[[], datetime] | None = None,
) -> PlanResult:
    """Plan (market, run_date) into `bucket`; the `none` submitter unless told otherwise.
    The clock reads 15:00 UTC on the run date (the planner dates its manifests by it)."""
    now = clock or (lambda: datetime.combine(run_date, time(15), UTC))
    deps = PlannerDeps(
        stores=PostgresStores(partial(connect, dsn, attempts=1)),
        files=store,
        bucket=bucket,
        prefix=PREFIX,
        submitter=submitter or NoneSubmitter(io.StringIO()),
        clock=now,
    )
    day = resolve_run_day(market, run_date, now())
    return plan_run(deps, PlanRequest(day, ChunkPolicy(explicit=chunk_size)))


def plan_day(
    dsn: str,
    store: ManifestStore,
    bucket: str,
    run_date: date,
    chunk_size: int,
    market: str = "XNYS",
) -> PlanResult:
    """Plan (market, run_date) with the `none` submitter: manifests in S3, nothing started."""
    result = plan_in_process(dsn, store, bucket, run_date, chunk_size, market=market)
    assert result.status == "submitted", result
    return result


def child_env(database_dsn: str, **extra: str) -> dict[str, str]:
    """What a `worthy-batch` child gets: this process's environment (moto, the stub
    providers), the test database, JSON logs, and `extra`."""
    return {**os.environ, "DATABASE_URL": database_dsn, "LOG_FORMAT": "json", **extra}


def execute_args(run_date: date, index: int, market: str = "XNYS") -> list[str]:
    """`worthy-batch` arguments that run chunk `index` of (market, run_date)."""
    return ["execute", "--run-id", RunKey(market, run_date).run_id, "--chunk-index", str(index)]


def run_report(aws: AwsStack) -> dict[str, Any]:
    """The report.json of the (only) run in the bucket."""
    key = next(k for k in aws.object_keys() if k.endswith("/report.json"))
    report: dict[str, Any] = json.loads(aws.objects()[key])
    return report
