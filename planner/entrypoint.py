"""`worthy-batch plan`: gather settings and clients, call the service, report."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from psycopg2.extensions import connection

from common import aws
from common.config import Settings, load_settings
from common.db import connect, database_url
from common.embedded_pg import local_dir
from common.logging import emit_metrics, get_logger
from common.manifest_store import ManifestStore
from common.submitters import JobSubmitter
from common.submitters.batch import BatchSubmitter
from common.submitters.local import LocalSubmitter
from common.submitters.none import NoneSubmitter
from planner.dry_run import preview
from planner.estimate import pricing_limits
from planner.service import PlannerDeps, PlanRequest, plan_run

log = get_logger(__name__)


def default_submitter(settings: Settings) -> str:
    return "batch" if settings.in_aws_batch or settings.batch_job_queue else "local"


def required_settings(kind: str, dry_run: bool) -> list[str]:
    if dry_run:
        return []
    required = ["manifest_bucket"]
    if kind == "batch":
        required += ["batch_job_queue", "executor_job_definition", "finalizer_job_definition"]
    return required


def build_submitter(kind: str, settings: Settings, dsn: str) -> JobSubmitter:
    if kind == "batch":
        assert settings.batch_job_queue and settings.executor_job_definition
        assert settings.finalizer_job_definition
        return BatchSubmitter(
            aws.batch_client(),
            job_queue=settings.batch_job_queue,
            executor_definition=settings.executor_job_definition,
            finalizer_definition=settings.finalizer_job_definition,
            own_job_id=settings.aws_batch_job_id,
        )
    if kind == "local":
        # Children reuse this database rather than each finding the embedded one.
        env = {**os.environ, "DATABASE_URL": dsn}
        return LocalSubmitter(
            env=env, parallelism=settings.local_parallelism, log_dir=local_dir() / "runs"
        )
    return NoneSubmitter()


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    kind = args.submitter or default_submitter(settings)
    settings = load_settings(required=required_settings(kind, args.dry_run))
    dsn = database_url(settings)
    connector: Callable[[], connection] = partial(
        connect, dsn, attempts=settings.db_connect_attempts, application_name="worthy-planner"
    )
    request = PlanRequest(
        args.market,
        args.run_date,
        settings.chunk_size,
        settings.planner_workers,
        pricing_limits(settings),
    )
    clock = partial(datetime.now, UTC)
    if args.dry_run:
        preview(connector, request, clock, sys.stdout)
        return 0
    assert settings.manifest_bucket
    deps = PlannerDeps(
        connect=connector,
        store=ManifestStore(aws.s3_client()),
        bucket=settings.manifest_bucket,
        prefix=settings.manifest_prefix,
        submitter=build_submitter(kind, settings, dsn),
        clock=clock,
    )
    started = datetime.now(UTC)
    result = plan_run(deps, request)
    log.info("%s", result.message, extra={"run_id": result.run_id, "status": result.status})
    emit_metrics(
        {
            "plans_due": result.plans_due,
            "chunks": result.chunk_count,
            "duration_ms": int((datetime.now(UTC) - started).total_seconds() * 1000),
        },
        market=args.market,
        stage="planner",
    )
    return 0
