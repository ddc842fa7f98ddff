"""`worthy-batch submit [--wait]`: submit the planner job as the schedule would, and follow it.

With --wait it prints each status change of the job and the lines of its
CloudWatch log stream until the job ends: exit 0 when it SUCCEEDED, 1 when
it FAILED, 75 when waiting timed out (the job itself goes on).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from common.adapters.error_map import translate
from common.domain.calendar import RunDateRefused, calendar_for, check_run_date
from common.platform.errors import ConfigError, JobFailed, TransientError
from common.platform.redact import redact
from ops.root import OpsRoot

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_logs import CloudWatchLogsClient

POLL_SECONDS = 10.0
DEFAULT_LOG_GROUP = "/aws/batch/job"
FINISHED = ("SUCCEEDED", "FAILED")


class WaitTimedOut(TransientError):
    def __init__(self, job_id: str, seconds: float) -> None:
        super().__init__(f"job {job_id} still running after {seconds:.0f}s; it goes on")


def submit_planner(
    batch: BatchClient,
    *,
    queue: str,
    definition: str,
    market: str,
    run_date: str | None,
    canary: bool = False,
    allow_future_date: bool = False,
) -> str:
    command = ["plan", "--market", market] + (["--run-date", run_date] if run_date else [])
    command += ["--canary"] if canary else []
    command += ["--allow-future-date"] if allow_future_date else []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    kind = "canary" if canary else "plan"
    response = batch.submit_job(
        jobName=f"worthy-{kind}-{market}-{run_date or 'today'}-{stamp}",
        jobQueue=queue,
        jobDefinition=definition,
        containerOverrides={"command": command},
    )
    return response["jobId"]


def follow_log(
    logs: CloudWatchLogsClient, group: str, stream: str, token: str | None, out: IO[str]
) -> str | None:
    """Print the stream's events after `token`; return the token to continue from."""
    while True:
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": stream,
            "startFromHead": True,
        }
        if token:
            kwargs["nextToken"] = token
        try:
            page = logs.get_log_events(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return token  # the stream appears once the container starts
            raise
        for event in page.get("events", []):
            out.write(redact(event["message"].rstrip("\n")) + "\n")
        following = page.get("nextForwardToken")
        if following == token or not page.get("events"):
            return following
        token = following


@dataclass(frozen=True)
class JobWatch:
    """How a command follows AWS Batch jobs: their status and their log lines, to `out`."""

    batch: BatchClient
    logs: CloudWatchLogsClient
    out: IO[str]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    poll: float = POLL_SECONDS

    def wait(self, job_id: str, timeout: float) -> dict[str, Any]:
        """Follow the job until it ends; return its final description."""
        deadline = self.clock() + timeout
        status, token = None, None
        while True:
            job: dict[str, Any] = dict(self.batch.describe_jobs(jobs=[job_id])["jobs"][0])
            if job["status"] != status:
                status = job["status"]
                reason = f" ({job['statusReason']})" if job.get("statusReason") else ""
                self.out.write(f"{datetime.now(UTC):%H:%M:%S} job {job_id} {status}{reason}\n")
                self.out.flush()
            stream = job.get("container", {}).get("logStreamName")
            if stream:
                group = (
                    job.get("container", {})
                    .get("logConfiguration", {})
                    .get("options", {})
                    .get("awslogs-group", DEFAULT_LOG_GROUP)
                )
                token = follow_log(self.logs, group, stream, token, self.out)
            if status in FINISHED:
                return job
            if self.clock() >= deadline:
                raise WaitTimedOut(job_id, timeout)
            self.sleep(self.poll)


def check_requested_date(args: argparse.Namespace, now: datetime) -> None:
    """--run-date, refused (78) before anything is submitted when the planner would refuse
    it: after the market's today without --allow-future-date, or outside its calendar data."""
    if args.run_date is None:
        return
    today = calendar_for(args.market).today(now)
    try:
        catch_up = check_run_date(
            args.market, args.run_date, today, allow_future=args.allow_future_date
        )
    except RunDateRefused as exc:
        raise ConfigError({"--run-date": str(exc)}) from None
    if catch_up:
        sys.stdout.write(f"catch-up run for {args.run_date} (today is {today} in {args.market})\n")


def run(args: argparse.Namespace, root: OpsRoot) -> int:
    check_requested_date(args, datetime.now(UTC))
    if args.canary:
        from ops.canary import run_command  # it builds on this module

        return run_command(args, root)
    settings = root.settings(required=["batch_job_queue", "planner_job_definition"])
    assert settings.batch_job_queue and settings.planner_job_definition
    batch = root.batch()
    run_date = args.run_date.isoformat() if args.run_date else None
    try:
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
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, "submitting or following the planner job") from None
    if job["status"] == "FAILED":
        raise JobFailed(job_id, job.get("statusReason", ""))
    return 0
