"""`worthy-batch submit [--wait]`: submit the planner job as the schedule would, and follow it.

With --wait it prints each status change of the job and the lines of its
CloudWatch log stream until the job ends: exit 0 when it SUCCEEDED, 1 when
it FAILED, 75 when waiting timed out (the job itself goes on). `submit --canary`
is ops/canary.py, which the CLI runs instead.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from common.adapters.batch import JobWatch, submit_planner
from common.domain.errors import JobFailed
from ops.root import OpsRoot
from ops.run_date import check_requested_date


def run(args: argparse.Namespace, root: OpsRoot) -> int:
    assert not args.canary, "the CLI runs `submit --canary` with ops/canary.py"
    check_requested_date(args, datetime.now(UTC))
    settings = root.settings(required=["batch_job_queue", "planner_job_definition"])
    assert settings.batch_job_queue and settings.planner_job_definition
    batch = root.batch()
    run_date = args.run_date.isoformat() if args.run_date else None
    job_id = submit_planner(
        batch,
        queue=settings.batch_job_queue,
        definition=settings.planner_job_definition,
        market=args.market,
        run_date=run_date,
        allow_future_date=args.allow_future_date,
    )
    sys.stdout.write(f"submitted planner job {job_id}\n")
    if not args.wait:
        return 0
    job = JobWatch(batch, root.logs(), sys.stdout).wait(job_id, args.timeout)
    if job["status"] == "FAILED":
        raise JobFailed(job_id, job.get("statusReason", ""))
    return 0
