"""Choosing and building the submitter a command runs executors with."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from common.adapters import aws
from common.adapters.submitters.base import JobSubmitter
from common.platform.config import Settings
from common.platform.plugins import devkit

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient


def default_kind(settings: Settings) -> str:
    """`batch` inside AWS Batch or when a job queue is configured, else `local`."""
    return "batch" if settings.in_aws_batch or settings.batch_job_queue else "local"


def required_settings(kind: str) -> list[str]:
    """The settings the `kind` of submitter cannot do without."""
    if kind == "batch":
        return ["batch_job_queue", "executor_job_definition", "finalizer_job_definition"]
    return []


def build_submitter(
    kind: str, settings: Settings, dsn: str, batch: BatchClient | None = None
) -> JobSubmitter:
    if kind == "batch":
        from common.adapters.submitters.batch import BatchSubmitter

        assert settings.batch_job_queue and settings.executor_job_definition
        assert settings.finalizer_job_definition
        return BatchSubmitter(
            batch or aws.batch_client(),
            job_queue=settings.batch_job_queue,
            executor_definition=settings.executor_job_definition,
            finalizer_definition=settings.finalizer_job_definition,
            own_job_id=settings.aws_batch_job_id,
        )
    if kind == "local":
        local: Callable[..., JobSubmitter] = devkit("local_submitter", "--submitter local")
        # Children reuse this database rather than each finding the embedded one.
        return local(
            env={**os.environ, "DATABASE_URL": dsn}, parallelism=settings.local_parallelism
        )
    from common.adapters.submitters.none import NoneSubmitter

    return NoneSubmitter()
