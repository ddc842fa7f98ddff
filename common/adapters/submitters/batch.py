"""AWS Batch: one array job for the chunks (a plain job for one chunk), and a finalizer
that depends on it; a redrive is one array job over the failed chunks, and a finalizer.

Batch's own rules shape the submissions (AWS's documentation, not moto's behaviour):
no job depends on more than 20 jobs (job_dependencies.html), so every finalizer
depends on exactly one job; an array holds 2..10,000 children (array_jobs.html), so
one chunk is a plain job. ListJobs with a JOB_NAME filter returns jobs of every
status, newest first (API_ListJobs.html), so a job found by name is reused only
while it can still succeed or has succeeded, never when it failed.

A run's jobs all run one release: `pin` turns the configured job definitions
(a name, `name:revision` or an ARN with or without revision) into revision
ARNs before anything is submitted, as SubmitJob would read them ("If the
revision is not specified, then the latest active revision is used",
API_SubmitJob.html), and the planner records them; every job of the run,
redrives included, is then submitted by those revisions, so a deploy in the
middle of a run cannot start the next release's executors on it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from common.adapters.batch import (
    JOB_NAME_PREFIX,
    access_denied,
    batch_errors,
    dependencies_of,
    executor_job_name,
    finalizer_job_name,
    jobs_named,
    queue_exists,
    submit,
)
from common.adapters.submitters.base import JobRecorder, Release, RunToSubmit
from common.adapters.submitters.revisions import latest_revision
from common.domain.errors import ConfigError
from common.platform.failpoints import failpoint
from common.platform.logging import get_logger

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

log = get_logger(__name__)

# A job in one of these states still runs, or ran, to success; any other (FAILED) is
# history, and submitting again under a new attempt name is what makes progress.
REUSABLE = frozenset({"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"})


class BatchSubmitter:
    """Submits to one job queue. Job names derive from the run id (plus `-2`, `-3`, ... for
    later attempts), so a planner that crashed after submitting never submits twice."""

    name = "batch"

    def __init__(
        self,
        batch: BatchClient,
        *,
        job_queue: str,
        executor_definition: str,
        finalizer_definition: str,
        own_job_id: str | None,
    ) -> None:
        self._batch = batch
        self._queue = job_queue
        self._executor = executor_definition
        self._finalizer = finalizer_definition
        self._own_job_id = own_job_id

    def pin(self, release: Release, *, strict: bool = False) -> Release:
        """Check the queue; resolve both job definitions to revision ARNs. Without the IAM
        rights to describe them (batch:DescribeJobQueues, batch:DescribeJobDefinitions) a
        run goes on with the definitions as configured, warned; `strict` (the canary) fails."""
        doing = "describing the job queue and definitions"
        with batch_errors(doing, job=doing):
            try:
                executor, finalizer = self._pinned(release)
            except Exception as exc:
                # Narrow on purpose: access denied here means "go on unpinned, warned";
                # anything else (and access denied to the canary) is sorted by batch_errors.
                denied = access_denied(exc)
                if denied is None or strict:
                    raise
                log.warning(
                    "cannot pin this run's job definitions to revisions (%s); submitting by "
                    "the configured ones, which a deploy during the run may change",
                    denied,
                )
                return Release(
                    release.executor_definition or self._executor,
                    release.finalizer_definition or self._finalizer,
                    release.executor_timeout_seconds,
                )
        log.info("this run's jobs: executor %s, finalizer %s", executor, finalizer)
        return Release(executor, finalizer, release.executor_timeout_seconds)

    def _pinned(self, release: Release) -> tuple[str, str]:
        """The executor's and the finalizer's job definitions as revision ARNs."""
        if not queue_exists(self._batch, self._queue):
            raise ConfigError({"BATCH_JOB_QUEUE": f"no job queue {self._queue}"})
        executor = latest_revision(
            self._batch, release.executor_definition or self._executor, "EXECUTOR_JOB_DEFINITION"
        )
        finalizer = latest_revision(
            self._batch, release.finalizer_definition or self._finalizer,
            "FINALIZER_JOB_DEFINITION",
        )  # fmt: skip
        return executor, finalizer

    def submit(self, run: RunToSubmit, record: JobRecorder) -> str:
        depends = [self._own_job_id] if self._own_job_id else []
        executor_id = self._chunks_job(
            executor_job_name(run.job_label),
            run,
            run.chunk_count,
            _chunk_environment(run, range(run.chunk_count), redrive=None),
            depends,
        )
        record(executor=executor_id)
        failpoint("planner.between_submissions")
        finalizer_id = self._finalizer_job(finalizer_job_name(run.job_label), run, executor_id)
        record(finalizer=finalizer_id)
        return (
            f"submitted executor job {executor_id} ({run.chunk_count} chunk(s)) and finalizer "
            f"{finalizer_id}"
        )

    def redrive(
        self, run: RunToSubmit, chunks: Sequence[int], attempt: int, record: JobRecorder
    ) -> str:
        executor_id = self._chunks_job(
            f"{JOB_NAME_PREFIX}-redrive{attempt}-{run.run_id}",
            run,
            len(chunks),
            _chunk_environment(run, chunks, redrive=attempt),
            [],
        )
        record(executor=executor_id)
        finalizer_id = self._finalizer_job(
            f"{JOB_NAME_PREFIX}-refinalize{attempt}-{run.run_id}", run, executor_id
        )
        record(finalizer=finalizer_id)
        return f"resubmitted {len(chunks)} chunk(s) as job {executor_id}; finalizer {finalizer_id}"

    def _chunks_job(
        self,
        name: str,
        run: RunToSubmit,
        children: int,
        environment: list[dict[str, str]],
        depends: list[str],
    ) -> str:
        request: dict[str, Any] = {
            "jobDefinition": run.release.executor_definition or self._executor,
            # The rule that finalizes a run whose executor job failed reads it from here.
            "parameters": {"run_id": run.run_id},
            "containerOverrides": {"environment": environment},
        }
        if run.release.executor_timeout_seconds:  # for an array, each child's (array_jobs.html)
            request["timeout"] = {"attemptDurationSeconds": run.release.executor_timeout_seconds}
        if children > 1:  # one chunk is a plain job: arrays hold 2..10,000 children
            request["arrayProperties"] = {"size": children}
        return self._find_or_submit(name, request, depends)

    def _finalizer_job(self, name: str, run: RunToSubmit, executor_id: str) -> str:
        request: dict[str, Any] = {
            "jobDefinition": run.release.finalizer_definition or self._finalizer,
            "parameters": {"run_id": run.run_id},
            "containerOverrides": {"command": ["finalize", "--run-id", run.run_id]},
        }
        return self._find_or_submit(name, request, [executor_id])

    def _find_or_submit(self, base: str, request: dict[str, Any], depends: list[str]) -> str:
        with batch_errors(f"submitting job {base}", base):
            found = self._attempts_of(base)
            for job in found:  # newest first
                if job["status"] in REUSABLE and self._depends_on(job["jobId"], depends):
                    log.info(
                        "job %s already submitted as %s (%s); not submitting again",
                        job["jobName"],
                        job["jobId"],
                        job["status"],
                    )
                    return str(job["jobId"])
            name = _next_attempt_name(base, [str(j["jobName"]) for j in found])
            if found:
                log.warning(
                    "earlier jobs named %s cannot succeed (%s); submitting %s",
                    base,
                    ", ".join(sorted({str(j["status"]) for j in found})),
                    name,
                )
            job_id = submit(
                self._batch,
                name,
                self._queue,
                {**request, "dependsOn": [{"jobId": d} for d in depends]},
            )
        log.info("submitted job %s as %s", name, job_id, extra={"depends_on": depends})
        return job_id

    def _attempts_of(self, base: str) -> list[dict[str, Any]]:
        """Every job named `base` or `base-N`, of any status, newest first."""
        pattern = re.compile(rf"{re.escape(base)}(-\d+)?", re.IGNORECASE)
        found = [
            job
            for job in jobs_named(self._batch, self._queue, base)
            if pattern.fullmatch(job["jobName"])
        ]
        found.sort(key=lambda j: int(j.get("createdAt", 0)), reverse=True)
        return found

    def _depends_on(self, job_id: str, depends: list[str]) -> bool:
        """Whether an existing job waits on exactly these jobs (a finalizer that waits on
        an executor job of an earlier attempt would never see this attempt's chunks)."""
        if not depends:
            return True
        return dependencies_of(self._batch, job_id) == set(depends)


def _chunk_environment(
    run: RunToSubmit, chunks: Sequence[int], redrive: int | None
) -> list[dict[str, str]]:
    environment = [{"name": "MANIFEST_URI", "value": run.manifest_uri}]
    if run.release.executor_timeout_seconds:
        # The child's own budget (how long it waits on a quote another child fetches)
        # is its attempt's timeout, the one submitted, not the job definition's.
        timeout = str(run.release.executor_timeout_seconds)
        environment.append({"name": "EXECUTOR_TIMEOUT_SECONDS", "value": timeout})
    if len(chunks) == 1:
        environment.append({"name": "CHUNK_INDEX", "value": str(chunks[0])})
    elif redrive is not None:
        # Children map AWS_BATCH_JOB_ARRAY_INDEX through the redrive's chunk list in S3.
        environment.append({"name": "REDRIVE", "value": str(redrive)})
    return environment


def _next_attempt_name(base: str, names: list[str]) -> str:
    if not names:
        return base
    numbers = [int(n.rsplit("-", 1)[1]) if n.lower() != base.lower() else 1 for n in names]
    return f"{base}-{max(numbers) + 1}"
