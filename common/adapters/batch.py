"""AWS Batch, in one place: job names, submitting, describing and finding jobs, and
following a job's status and CloudWatch log lines (`JobWatch`).

The only module that calls a Batch client (tests/unit/test_batch_boundary.py keeps it
so). Used by the submitter (common/adapters/submitters/batch.py) and its job
definition revisions (submitters/revisions.py), `worthy-batch submit`, the canary
(ops/canary.py) and, through the submitter, redrive. botocore's errors leave this
module's own commands (`submit_planner`, `describe_job`, `find_job`, `follow_log`,
`JobWatch`) as worthy-batch's, sorted by common/adapters/error_map.py; one refusal
of Batch's own (a ClientException that is not an unknown queue or job definition)
becomes `SubmissionRefused` naming the job it refused. The submitter's calls
(`queue_exists` ... `dependencies_of`) leave botocore's errors to the caller's
`batch_errors` block, which names the job it is submitting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from common.adapters.error_map import translate
from common.domain.errors import ServiceRefused, SubmissionRefused, WaitTimedOut
from common.platform.redact import redact

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_logs import CloudWatchLogsClient

JOB_NAME_PREFIX = "worthy"
POLL_SECONDS = 10.0
DEFAULT_LOG_GROUP = "/aws/batch/job"
FINISHED = ("SUCCEEDED", "FAILED")


def executor_job_name(label: str) -> str:
    """The executor job's name for a run (or a canary) labelled `label`."""
    return f"{JOB_NAME_PREFIX}-execute-{label}"


def finalizer_job_name(label: str) -> str:
    """The finalizer's job name for a run (or a canary) labelled `label`."""
    return f"{JOB_NAME_PREFIX}-finalize-{label}"


@contextmanager
def batch_errors(doing: str, job: str = "") -> Iterator[None]:
    """botocore's errors inside the block, raised as worthy-batch's (error_map.py): an
    unknown queue or job definition, or access denied, is configuration (78); throttling,
    5xx, lost connections transient (75); Batch's own refusals (its limits) a
    `SubmissionRefused` naming `job` (1)."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        error = translate(exc, doing)
        if isinstance(error, ServiceRefused) and job:
            raise SubmissionRefused(job, error.message) from None
        raise error from None


def access_denied(exc: BaseException) -> str | None:
    """Batch's message when `exc` is it refusing this role a call (AccessDeniedException),
    else None: the one refusal a caller may choose to live with rather than sort."""
    if not isinstance(exc, ClientError):
        return None
    error = exc.response.get("Error", {})
    if error.get("Code") != "AccessDeniedException":
        return None
    return str(error.get("Message", "access denied"))


# -- the submitter's calls: botocore's errors pass through, for the caller's batch_errors


def queue_exists(batch: BatchClient, queue: str) -> bool:
    """DescribeJobQueues: whether `queue` (a name or an ARN) exists."""
    return bool(batch.describe_job_queues(jobQueues=[queue])["jobQueues"])


def definitions_named(batch: BatchClient, reference: str) -> list[dict[str, Any]]:
    """DescribeJobDefinitions for one `name:revision` or ARN with revision."""
    found = batch.describe_job_definitions(jobDefinitions=[reference])["jobDefinitions"]
    return [dict(d) for d in found]


def active_definitions(batch: BatchClient, name: str) -> list[dict[str, Any]]:
    """DescribeJobDefinitions, every page: each ACTIVE revision of the definition `name`."""
    pages = batch.get_paginator("describe_job_definitions").paginate(
        jobDefinitionName=name, status="ACTIVE"
    )
    return [dict(d) for page in pages for d in page["jobDefinitions"]]


def submit(batch: BatchClient, name: str, queue: str, request: dict[str, Any]) -> str:
    """SubmitJob: the job `name` in `queue`, as `request` describes it; its id."""
    response = batch.submit_job(jobName=name, jobQueue=queue, **request)
    return str(response["jobId"])


def jobs_named(batch: BatchClient, queue: str, prefix: str) -> list[dict[str, Any]]:
    """ListJobs, every page: the jobs in `queue` whose name starts with `prefix`, of any
    status (a JOB_NAME filter ending in `*` is a prefix, API_ListJobs.html)."""
    pages = batch.get_paginator("list_jobs").paginate(
        jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [f"{prefix}*"]}]
    )
    return [dict(job) for page in pages for job in page["jobSummaryList"]]


def dependencies_of(batch: BatchClient, job_id: str) -> set[str]:
    """DescribeJobs: the ids of the jobs `job_id` waits on."""
    jobs = batch.describe_jobs(jobs=[job_id])["jobs"]
    return {d["jobId"] for job in jobs for d in job.get("dependsOn", [])}


# -- commands: botocore's errors leave as worthy-batch's


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
    """Submit the planner job as the schedule would (`plan --canary` when `canary`)."""
    command = ["plan", "--market", market] + (["--run-date", run_date] if run_date else [])
    command += ["--canary"] if canary else []
    command += ["--allow-future-date"] if allow_future_date else []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    kind = "canary" if canary else "plan"
    name = f"{JOB_NAME_PREFIX}-{kind}-{market}-{run_date or 'today'}-{stamp}"
    with batch_errors("submitting the planner job", name):
        response = batch.submit_job(
            jobName=name,
            jobQueue=queue,
            jobDefinition=definition,
            containerOverrides={"command": command},
        )
    return response["jobId"]


def describe_job(batch: BatchClient, job_id: str) -> dict[str, Any]:
    """DescribeJobs for one job."""
    with batch_errors(f"describing job {job_id}"):
        return dict(batch.describe_jobs(jobs=[job_id])["jobs"][0])


def find_job(batch: BatchClient, queue: str, name: str) -> str | None:
    """The id of the newest job named `name` in `queue` (any status), or None."""
    with batch_errors(f"looking for job {name}"):
        found = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}])
    summaries = found["jobSummaryList"]
    return str(summaries[0]["jobId"]) if summaries else None


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
        with batch_errors(f"reading log stream {stream}"):
            try:
                page = logs.get_log_events(**kwargs)
            except ClientError as exc:
                # Not an error here: the stream appears once the container starts.
                if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return token
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
            job = describe_job(self.batch, job_id)
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
