"""`plan --canary`: the smoke test's probe through every role, buying nothing.

On a Saturday or Sunday (no real run exists for a weekend day) the planner
first calls the Batch API a real run needs (DescribeJobQueues for its queue,
DescribeJobDefinitions for the executor and finalizer: the revisions a real
run pins), then writes a run with one empty chunk, marked `canary`, and
submits its executor and finalizer by those revisions as for any run. That
exercises the planner's network path to Batch and its SubmitJob, the
executor's secrets (it checks every provider key is set) and its network path
to the providers (one real quote and one FX rate through the same chain,
quotas included, as a real child: executor/canary.py), its S3 reads and
result write, and the finalizer's report. Anything unreachable fails the
job with one line naming it. The finalizer then deletes the run's rows; the
smoke test deletes its files.

A slice of its own: the CLI runs `run` for `plan --canary`; it builds on the
planner's service and entrypoint (their types and wiring), which know nothing of it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from common.adapters.manifest_store import encode_chunk
from common.adapters.ports import RunStore
from common.adapters.store.runs import CANARY
from common.adapters.submitters import Release, RunToSubmit
from common.domain.calendar import SATURDAY, RunDay, last_weekend_day, resolve_run_day, today_at
from common.domain.errors import ConfigError, TransientError, Unreachable
from common.domain.models import RunManifest, closures_of_run
from common.domain.run_key import RunKey, RunLocation
from common.domain.statuses import RunStatus
from common.platform.config import Settings
from common.platform.logging import emit_metrics, get_logger, log_context
from planner.entrypoint import PlannerRoot, planner_deps, planner_settings
from planner.service import PlannerDeps, PlanResult, log_catch_up

log = get_logger(__name__)


@dataclass(frozen=True)
class CanaryRequest:
    day: RunDay
    tag: str  # makes the canary's job names unique: a second canary for a day submits anew


def canary_request(args: argparse.Namespace, settings: Settings, now: datetime) -> CanaryRequest:
    """`--canary`: the date defaults to the last weekend day, and is checked as any run's
    day is; the planner's job id (or the time) tags the canary's job names, so a second
    canary for the same day submits anew."""
    run_date = args.run_date or last_weekend_day(today_at(args.market, now))
    day = resolve_run_day(args.market, run_date, now, allow_future=args.allow_future_date)
    tag = settings.aws_batch_job_id or now.strftime("%Y%m%dT%H%M%S")
    return CanaryRequest(day, tag)


def run(args: argparse.Namespace, root: PlannerRoot) -> int:
    """`worthy-batch plan --canary`."""
    if args.dry_run:
        raise ConfigError({"--canary": "cannot be combined with --dry-run"})
    settings, kind = planner_settings(args, root)
    clock = partial(datetime.now, UTC)
    request = canary_request(args, settings, clock())
    deps = planner_deps(settings, kind, root, clock)
    started = datetime.now(UTC)
    result = plan_canary(deps, request)
    log.info("%s", result.message, extra={"run_id": result.run_id, "status": result.status})
    duration_ms = int((datetime.now(UTC) - started).total_seconds() * 1000)
    emit_metrics(
        {"plans_due": result.plans_due, "chunks": result.chunk_count, "duration_ms": duration_ms},
        market=args.market,
        stage="planner",
    )
    return 0


def plan_canary(deps: PlannerDeps, request: CanaryRequest) -> PlanResult:
    """The canary run of the request's day, written and submitted."""
    key = request.day.key
    with log_context(run_id=key.run_id, market=key.market):
        log_catch_up(request.day)
        with deps.stores.runs() as runs:
            return _plan(deps, runs, key, request.tag)


def _plan(deps: PlannerDeps, runs: RunStore, key: RunKey, tag: str) -> PlanResult:
    """Write and submit the canary run of the key's day; `tag` makes its job names unique."""
    if key.run_date.weekday() < SATURDAY:
        raise ConfigError(
            {"--run-date": f"{key.run_date} is a weekday; a canary runs on a Saturday or Sunday"}
        )
    assert deps.files is not None and deps.submitter is not None
    try:
        release = deps.submitter.pin(Release(), strict=True)
    except TransientError as exc:  # Batch did not answer: no route to its endpoint
        raise Unreachable("AWS Batch", str(exc)) from None
    run_id = key.run_id
    where = RunLocation.for_run(deps.bucket, deps.prefix, key)
    runs.lock(run_id)
    try:
        # An earlier canary's leftovers, or that weekend day's market_closed record.
        runs.delete_canary(run_id)
        runs.claim(key)
        runs.set_status(run_id, RunStatus.PLANNING, detail=CANARY)
        chunk = deps.files.put_chunk(where, 0, encode_chunk([]), items=0, symbols=0)
        manifest = RunManifest(
            schema_version=1,
            run_id=run_id,
            market=key.market,
            run_date=key.run_date,
            created_at=deps.clock(),
            item_count=0,
            chunk_count=1,
            chunks=[chunk],
            calendars=closures_of_run(key),
        )
        deps.files.put_manifest(where, manifest)
        runs.record_manifested(
            run_id, manifest_uri=where.manifest_uri, plans_due=0, invalid_plans=0, chunks=[chunk]
        )
        runs.set_status(run_id, RunStatus.SUBMITTING)
        message = deps.submitter.submit(
            RunToSubmit(
                run_id, where.manifest_uri, 1, label=f"{run_id}-canary-{tag}", release=release
            ),
            lambda **jobs: runs.record_job(run_id, **jobs),
        )
        runs.advance(run_id, RunStatus.SUBMITTING, RunStatus.SUBMITTED)
    finally:
        runs.unlock(run_id)
    return PlanResult(
        run_id,
        RunStatus.SUBMITTED,
        f"canary {run_id}: one empty chunk; {message}",
        0,
        1,
        where.manifest_uri,
    )
