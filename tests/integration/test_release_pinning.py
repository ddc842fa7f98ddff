"""BatchSubmitter.pin: the job definitions a run's jobs are submitted with, as revisions.

Against the dev kit's Batch emulator through boto3 (API_SubmitJob.html: a name
without revision is "the latest active revision"; API_DescribeJobDefinitions.html).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.adapters.submitters import Release
from common.adapters.submitters.batch import BatchSubmitter
from common.adapters.submitters.revisions import parse_definition
from common.domain.errors import ConfigError
from devkit.batch.local import EXECUTOR, FINALIZER, LocalBatch


class DescribeDenied:
    """A Batch client whose role may submit and follow jobs but not describe job queues
    or definitions (a stack whose planner role lacks those two actions)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def describe_job_queues(self, **_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
            "DescribeJobQueues",
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _submitter(batch: LocalBatch, client: Any = None, **definitions: str) -> BatchSubmitter:
    return BatchSubmitter(
        client or batch.client(),
        job_queue=batch.emulator.queue_arn,
        executor_definition=definitions.get("executor", EXECUTOR),
        finalizer_definition=definitions.get("finalizer", FINALIZER),
        own_job_id=None,
    )


def test_names_are_pinned_to_their_latest_revision_and_revisions_are_kept(
    idle_batch: LocalBatch,
) -> None:
    emulator = idle_batch.emulator
    first = _submitter(idle_batch).pin(Release(executor_timeout_seconds=600))
    assert first == Release(
        emulator.definition(EXECUTOR).arn, emulator.definition(FINALIZER).arn, 600
    )
    assert first.executor_definition and first.executor_definition.endswith(f"{EXECUTOR}:1")
    emulator.register(replace(emulator.definition(EXECUTOR), command=("execute",)))
    later = _submitter(idle_batch).pin(Release())
    assert later.executor_definition and later.executor_definition.endswith(f"{EXECUTOR}:2")
    kept = _submitter(idle_batch, executor=f"{EXECUTOR}:1").pin(Release())
    assert kept.executor_definition == first.executor_definition


def test_an_unknown_queue_or_definition_is_a_configuration_error(idle_batch: LocalBatch) -> None:
    with pytest.raises(ConfigError, match="no ACTIVE job definition nope"):
        _submitter(idle_batch, finalizer="nope").pin(Release())
    wrong_queue = BatchSubmitter(
        idle_batch.client(), job_queue="other", executor_definition=EXECUTOR,
        finalizer_definition=FINALIZER, own_job_id=None,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="BATCH_JOB_QUEUE: no job queue other"):
        wrong_queue.pin(Release())


def test_without_the_right_to_describe_a_run_goes_on_by_name_but_the_canary_fails(
    idle_batch: LocalBatch,
) -> None:
    denied = _submitter(idle_batch, DescribeDenied(idle_batch.client()))
    assert denied.pin(Release(executor_timeout_seconds=600)) == Release(EXECUTOR, FINALIZER, 600)
    with pytest.raises(
        ConfigError, match=r"access denied \(check the role.s IAM policy\).*not authorized"
    ):
        denied.pin(Release(), strict=True)


def test_a_definition_is_a_name_a_revision_or_an_arn() -> None:
    arn = "arn:aws:batch:us-east-1:123456789012:job-definition/worthy-executor"
    assert parse_definition("worthy-executor") == ("worthy-executor", None)
    assert parse_definition("worthy-executor:3") == ("worthy-executor", 3)
    assert parse_definition(arn) == ("worthy-executor", None)
    assert parse_definition(f"{arn}:12") == ("worthy-executor", 12)
    with pytest.raises(ConfigError, match="the revision must be a number"):
        parse_definition("worthy-executor:latest")
