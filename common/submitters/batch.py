"""AWS Batch: one array job for the chunks, and a finalizer that depends on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from common.errors import ConfigError, TransientError
from common.failpoints import failpoint
from common.logging import get_logger
from common.submitters.base import JobRecorder, RunToSubmit

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

log = get_logger(__name__)

JOB_NAME_PREFIX = "worthy"


def finalizer_job_name(label: str) -> str:
    """The finalizer's job name for a run (or a canary) labelled `label`."""
    return f"{JOB_NAME_PREFIX}-finalize-{label}"


class BatchUnavailable(TransientError):
    def __init__(self, what: str) -> None:
        super().__init__(f"AWS Batch call failed: {what}")


class BatchSubmitter:
    """Submits to one job queue. Job names are derived from the run id, and an
    existing job with the same name is reused, so a planner that crashed after
    submitting never submits twice."""

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

    def submit(self, run: RunToSubmit, record: JobRecorder) -> str:
        depends = [self._own_job_id] if self._own_job_id else []
        executor_id = self._chunks_job(
            f"{JOB_NAME_PREFIX}-execute-{run.job_label}", run, list(range(run.chunk_count)), depends
        )
        record(executor=executor_id)
        failpoint("planner.between_submissions")
        finalizer_id = self._finalizer_job(finalizer_job_name(run.job_label), run, executor_id)
        record(finalizer=finalizer_id)
        return (
            f"submitted executor job {executor_id} ({run.chunk_count} chunk(s)) and finalizer "
            f"{finalizer_id}"
        )

    def redrive(self, run: RunToSubmit, chunks: Sequence[int], attempt: int) -> str:
        ids = [
            self._chunks_job(f"{JOB_NAME_PREFIX}-redrive{attempt}-{run.run_id}-{i}", run, [i], [])
            for i in chunks
        ]
        finalizer_id = self._finalizer_job(
            f"{JOB_NAME_PREFIX}-refinalize{attempt}-{run.run_id}", run, *ids
        )
        return f"resubmitted {len(ids)} chunk(s) as {', '.join(ids)}; finalizer {finalizer_id}"

    def _chunks_job(
        self, name: str, run: RunToSubmit, chunks: list[int], depends: list[str]
    ) -> str:
        environment = [{"name": "MANIFEST_URI", "value": run.manifest_uri}]
        request: dict[str, Any] = {"jobDefinition": self._executor}
        if len(chunks) == 1:
            # A single chunk: a plain job (arrays hold 2..10,000 children).
            environment.append({"name": "CHUNK_INDEX", "value": str(chunks[0])})
        else:
            request["arrayProperties"] = {"size": len(chunks)}
        request["containerOverrides"] = {"environment": environment}
        return self._find_or_submit(name, request, depends)

    def _finalizer_job(self, name: str, run: RunToSubmit, *depends: str) -> str:
        request: dict[str, Any] = {
            "jobDefinition": self._finalizer,
            "parameters": {"run_id": run.run_id},
            "containerOverrides": {"command": ["finalize", "--run-id", run.run_id]},
        }
        return self._find_or_submit(name, request, list(depends))

    def _find_or_submit(self, name: str, request: dict[str, Any], depends: list[str]) -> str:
        try:
            existing = self._batch.list_jobs(
                jobQueue=self._queue, filters=[{"name": "JOB_NAME", "values": [name]}]
            )["jobSummaryList"]
            if existing:
                job_id = existing[0]["jobId"]
                log.info("job %s already submitted as %s; not submitting again", name, job_id)
                return job_id
            response = self._batch.submit_job(
                jobName=name,
                jobQueue=self._queue,
                dependsOn=[{"jobId": d} for d in depends],
                **request,
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in ("ClientException", "AccessDeniedException"):
                raise ConfigError(
                    {"BATCH_JOB_QUEUE/JOB_DEFINITION": str(error.get("Message"))}
                ) from None
            raise BatchUnavailable(str(error.get("Message") or exc)) from None
        except BotoCoreError as exc:
            raise BatchUnavailable(str(exc)) from None
        job_id = response["jobId"]
        log.info("submitted job %s as %s", name, job_id, extra={"depends_on": depends})
        return job_id
