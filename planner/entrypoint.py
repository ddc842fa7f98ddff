"""`worthy-batch plan`: ask the composition root for settings and clients, call the
service, report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from psycopg2.extensions import connection

from common.adapters.heartbeat import emit_heartbeat
from common.adapters.jobclock import job_usage
from common.adapters.manifest_store import ManifestStore
from common.adapters.submitters import JobSubmitter
from common.adapters.submitters.factory import default_kind, required_settings
from common.domain.calendar import calendar_for, last_weekend_day
from common.domain.chunking import (
    FARGATE_CHILD,
    LOCAL_CHILD,
    TEMPLATE_MAX_CHILDREN,
    ChunkPolicy,
)
from common.domain.models import parse_run_id
from common.domain.statuses import FINISHED_RUN, RunStatus
from common.platform.config import Settings
from common.platform.errors import ConfigError
from common.platform.logging import emit_metrics, get_logger
from planner.dry_run import preview
from planner.estimate import pricing_limits
from planner.service import PlannerDeps, PlanRequest, plan_run
from planner.workers import container_limits, planner_workers

log = get_logger(__name__)

APPLICATION_NAME = "worthy-planner"


class PlannerRoot(Protocol):
    """What `plan` asks the composition root (entry/bootstrap.py) for."""

    def settings(self, required: Iterable[str] = ()) -> Settings: ...

    def connector(self, application_name: str = ...) -> Callable[[], connection]: ...

    def manifest_store(self) -> ManifestStore: ...

    def submitter(self, kind: str) -> JobSubmitter: ...


def canary_request(
    args: argparse.Namespace, settings: Settings, request: PlanRequest
) -> PlanRequest:
    """`--canary`: the date defaults to the last weekend day; the planner's job id (or the
    time) tags the canary's job names, so a second canary for the same day submits anew."""
    if args.dry_run:
        raise ConfigError({"--canary": "cannot be combined with --dry-run"})
    today = calendar_for(args.market).today(datetime.now(UTC))
    tag = settings.aws_batch_job_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return replace(request, run_date=args.run_date or last_weekend_day(today), canary_tag=tag)


def chunk_policy(kind: str, settings: Settings) -> ChunkPolicy:
    """CHUNK_SIZE, else chunks sized for where the children run: Fargate tasks of the
    template's size (at most MaxVcpus / JobVcpus at once), or processes on this machine
    (LOCAL_PARALLELISM at once)."""
    if kind == "batch":
        cost, at_once = FARGATE_CHILD, TEMPLATE_MAX_CHILDREN
    else:
        cost, at_once = LOCAL_CHILD, settings.local_parallelism
    return ChunkPolicy(settings.chunk_size, settings.max_children or at_once, cost)


def run(args: argparse.Namespace, root: PlannerRoot) -> int:
    settings = root.settings()
    kind = args.submitter or default_kind(settings)
    root.settings(required=[] if args.dry_run else ["manifest_bucket", *required_settings(kind)])
    connector = root.connector(APPLICATION_NAME)
    workers = settings.planner_workers or planner_workers(container_limits())
    request = PlanRequest(
        args.market,
        args.run_date,
        chunk_policy(kind, settings),
        workers,
        pricing=pricing_limits(settings),
        allow_future_date=args.allow_future_date,
    )
    if args.canary:
        request = canary_request(args, settings, request)
    clock = partial(datetime.now, UTC)
    if args.dry_run:
        preview(connector, request, clock, sys.stdout)
        return 0
    assert settings.manifest_bucket
    deps = PlannerDeps(
        connect=connector,
        store=root.manifest_store(),
        bucket=settings.manifest_bucket,
        prefix=settings.manifest_prefix,
        submitter=root.submitter(kind),
        clock=clock,
        usage=partial(job_usage, settings, planner=True),
    )
    started = datetime.now(UTC)
    result = plan_run(deps, request)
    log.info("%s", result.message, extra={"run_id": result.run_id, "status": result.status})
    if not args.canary and result.status in FINISHED_RUN | {RunStatus.MARKET_CLOSED}:
        # Final without a finalizer: closed, nothing due, or already complete.
        emit_heartbeat(args.market, parse_run_id(result.run_id)[1], clock())
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
