"""`worthy-batch plan`: ask the composition root for settings and clients, call the service,
report. `plan --canary` is planner/canary.py's, built on the same wiring."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from psycopg2.extensions import connection

from common.adapters.heartbeat import emit_heartbeat
from common.adapters.jobclock import job_usage
from common.adapters.manifest_store import ManifestStore
from common.adapters.store.unit_of_work import PostgresStores
from common.adapters.submitters import JobSubmitter
from common.adapters.submitters.factory import default_kind, required_settings
from common.domain.calendar import resolve_run_day
from common.domain.chunking import (
    FARGATE_CHILD,
    LOCAL_CHILD,
    TEMPLATE_MAX_CHILDREN,
    ChunkPolicy,
)
from common.domain.statuses import FINISHED_RUN, RunStatus
from common.platform.config import Settings
from common.platform.logging import emit_metrics, get_logger
from planner.dry_run import preview
from planner.estimate import pricing_limits
from planner.request import PlanRequest
from planner.service import PlannerDeps, plan_run
from planner.workers import container_limits, planner_workers

log = get_logger(__name__)

APPLICATION_NAME = "worthy-planner"


class PlannerRoot(Protocol):
    """What `plan` asks the composition root (entry/bootstrap.py) for."""

    def settings(self, required: Iterable[str] = ()) -> Settings: ...

    def connector(self, application_name: str = ...) -> Callable[[], connection]: ...

    def manifest_store(self) -> ManifestStore: ...

    def submitter(self, kind: str) -> JobSubmitter: ...


def chunk_policy(kind: str, settings: Settings) -> ChunkPolicy:
    """CHUNK_SIZE, else chunks sized for where the children run: Fargate tasks of the
    template's size (at most MaxVcpus / JobVcpus at once), or processes on this machine
    (LOCAL_PARALLELISM at once)."""
    if kind == "batch":
        cost, at_once = FARGATE_CHILD, TEMPLATE_MAX_CHILDREN
    else:
        cost, at_once = LOCAL_CHILD, settings.local_parallelism
    return ChunkPolicy(settings.chunk_size, settings.max_children or at_once, cost)


def planner_settings(args: argparse.Namespace, root: PlannerRoot) -> tuple[Settings, str]:
    """The settings `plan` needs, checked, and the kind of submitter it runs executors with."""
    settings = root.settings()
    kind = args.submitter or default_kind(settings)
    needed = [] if args.dry_run else ["manifest_bucket", *required_settings(kind)]
    return root.settings(required=needed), kind


def planner_deps(
    settings: Settings, kind: str, root: PlannerRoot, clock: Callable[[], datetime]
) -> PlannerDeps:
    """What the planner plans (and the canary plans) with: the database, S3, the submitter."""
    assert settings.manifest_bucket
    return PlannerDeps(
        stores=PostgresStores(root.connector(APPLICATION_NAME)),
        files=root.manifest_store(),
        bucket=settings.manifest_bucket,
        prefix=settings.manifest_prefix,
        submitter=root.submitter(kind),
        clock=clock,
        usage=partial(job_usage, settings, planner=True),
    )


def run(args: argparse.Namespace, root: PlannerRoot) -> int:
    """The day resolved and checked first (a bad --market or --run-date is 78 before
    anything is connected to), then planned; a day that ends here beats the heartbeat."""
    assert not args.canary, "the CLI runs `plan --canary` with planner/canary.py"
    settings, kind = planner_settings(args, root)
    chunking = chunk_policy(kind, settings)
    clock = partial(datetime.now, UTC)
    day = resolve_run_day(args.market, args.run_date, clock(), allow_future=args.allow_future_date)
    deps = None if args.dry_run else planner_deps(settings, kind, root, clock)
    workers = settings.planner_workers or planner_workers(container_limits())
    request = PlanRequest(day, chunking, workers, pricing=pricing_limits(settings))
    if deps is None:
        preview(root.connector(APPLICATION_NAME), request, sys.stdout)
        return 0
    started = datetime.now(UTC)
    result = plan_run(deps, request)
    log.info("%s", result.message, extra={"run_id": result.run_id, "status": result.status})
    if result.status in FINISHED_RUN | {RunStatus.MARKET_CLOSED}:
        # Final without a finalizer: closed, nothing due, or already complete; of the
        # market's today when the plan started (a plan that crosses midnight still ran it).
        emit_heartbeat(day.key, day.today)
    duration_ms = int((datetime.now(UTC) - started).total_seconds() * 1000)
    emit_metrics(
        {"plans_due": result.plans_due, "chunks": result.chunk_count, "duration_ms": duration_ms},
        market=day.key.market,
        stage="planner",
    )
    return 0
