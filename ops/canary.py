"""`worthy-batch submit --canary --wait`: the smoke test's canary, followed to its end.

Submits `plan --canary` to the planner job definition, follows the planner, the
canary's executor and its finalizer (found by their job names), printing their
log lines (an unreachable provider or Batch endpoint is named there, in one
line, by the job that could not reach it), checks the report the finalizer wrote
(succeeded, nothing bought), and deletes the canary's files (every version) from
the runs bucket, whatever happened. The finalizer deletes the run's rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from common.adapters.batch import (
    JobWatch,
    executor_job_name,
    finalizer_job_name,
    find_job,
    submit_planner,
)
from common.adapters.error_map import translated
from common.domain.calendar import SATURDAY, last_weekend_day
from common.domain.errors import ConfigError, JobFailed
from common.domain.run_key import RunKey, RunLocation
from common.domain.statuses import RunStatus
from ops.root import OpsRoot
from ops.run_date import check_requested_date

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


def run_canary(
    watch: JobWatch,
    s3: S3Client,
    *,
    queue: str,
    definition: str,
    where: RunLocation,
    market: str,
    run_date: date,
    timeout: float,
    allow_future_date: bool = False,
) -> dict[str, Any]:
    """Run the canary; return its report. Raises JobFailed when any step failed."""
    batch, out, clock = watch.batch, watch.out, watch.clock
    deadline = clock() + timeout
    planner_id = submit_planner(
        batch, queue=queue, definition=definition, market=market,
        run_date=run_date.isoformat(), canary=True, allow_future_date=allow_future_date,
    )  # fmt: skip
    out.write(f"submitted canary planner job {planner_id}\n")

    def follow(job_id: str) -> None:
        job = watch.wait(job_id, max(0.0, deadline - clock()))
        if job["status"] == "FAILED":
            raise JobFailed(job_id, job.get("statusReason", ""))

    try:
        follow(planner_id)
        label = f"{RunKey(market, run_date).run_id}-canary-{planner_id}"
        executor_id = find_job(batch, queue, executor_job_name(label))
        if executor_id is not None:  # its log says what it could not reach
            out.write(f"following the canary's executor {executor_id}\n")
            follow(executor_id)
        finalizer_id = find_job(batch, queue, finalizer_job_name(label))
        if finalizer_id is None:
            raise JobFailed(planner_id, "the canary planner submitted no finalizer")
        out.write(f"following the canary's finalizer {finalizer_id}\n")
        follow(finalizer_id)
        report = read_report(s3, where, finalizer_id)
        out.write(f"canary {report['run_id']} succeeded: every role ran, nothing was bought\n")
        return report
    finally:
        removed = delete_run_files(s3, where)
        out.write(
            f"deleted {removed} object version(s) under s3://{where.bucket}/{where.prefix}/\n"
        )


def read_report(s3: S3Client, where: RunLocation, finalizer_id: str) -> dict[str, Any]:
    body = s3.get_object(Bucket=where.bucket, Key=where.report_key)["Body"].read()
    report: dict[str, Any] = json.loads(body)
    bought = report.get("outcomes", {}).get("purchased", 0)
    if report.get("status") != RunStatus.SUCCEEDED or bought:
        raise JobFailed(
            finalizer_id, f"canary report says {report.get('status')}, {bought} purchase(s)"
        )
    return report


def delete_run_files(s3: S3Client, where: RunLocation) -> int:
    """Delete every version and delete marker under the run's prefix (the bucket is
    versioned, so a plain delete would only hide the files)."""
    doomed: list[dict[str, str]] = []
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=where.bucket, Prefix=f"{where.prefix}/"
    )
    for page in pages:
        for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            doomed.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
    for start in range(0, len(doomed), DELETE_BATCH):
        s3.delete_objects(
            Bucket=where.bucket,
            Delete={"Objects": doomed[start : start + DELETE_BATCH], "Quiet": True},  # type: ignore[typeddict-item]
        )
    return len(doomed)


def run(args: argparse.Namespace, root: OpsRoot) -> int:
    """`submit --canary --wait` (the canary is only useful followed to its end)."""
    day = check_requested_date(args, datetime.now(UTC))
    if not args.wait:
        raise ConfigError({"--canary": "needs --wait: the canary is checked and cleaned up"})
    required = ["batch_job_queue", "planner_job_definition", "manifest_bucket"]
    settings = root.settings(required=required)
    assert settings.batch_job_queue and settings.planner_job_definition
    assert settings.manifest_bucket
    run_date = args.run_date or last_weekend_day(day.today)
    if run_date.weekday() < SATURDAY:
        raise ConfigError({"--run-date": f"{run_date} is a weekday; a canary runs on a weekend"})
    where = RunLocation.for_run(
        settings.manifest_bucket, settings.manifest_prefix, RunKey(args.market, run_date)
    )
    with translated("running the canary"):  # S3's errors: the report, the files
        run_canary(
            JobWatch(root.batch(), root.logs(), sys.stdout), root.s3(),
            queue=settings.batch_job_queue, definition=settings.planner_job_definition,
            where=where, market=args.market, run_date=run_date, timeout=args.timeout,
            allow_future_date=args.allow_future_date,
        )  # fmt: skip
    return 0
