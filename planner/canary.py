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
from datetime import UTC, date, datetime
from functools import partial

from common.adapters.manifest_store import RunLocation, encode_chunk
from common.adapters.ports import RunStore
from common.adapters.store.runs import CANARY
from common.adapters.submitters import Release, RunToSubmit
from common.domain.calendar import SATURDAY, calendar_for, last_weekend_day
from common.domain.models import RunManifest, closures_of_run, run_id_for
from common.domain.statuses import RunStatus
from common.platform.config import Settings
from common.platform.errors import ConfigError, TransientError, Unreachable
from common.platform.logging import get_logger, log_context
from planner.entrypoint import PlannerRoot, emit_plan_metrics, planner_deps, planner_settings
from planner.service import PlannerDeps, PlanRequest, PlanResult, log_catch_up, resolve_run

log = get_logger(__name__)


@dataclass(frozen=True)
class CanaryRequest:
    market: str
    run_date: date
    tag: str  # makes the canary's job names unique: a second canary for a day submits anew
    allow_future_date: bool = False


def canary_request(args: argparse.Namespace, settings: Settings) -> CanaryRequest:
    """`--canary`: the date defaults to the last weekend day; the planner's job id (or the
    time) tags the canary's job names, so a second canary for the same day submits anew."""
    today = calendar_for(args.market).today(datetime.now(UTC))
    tag = settings.aws_batch_job_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    run_date = args.run_date or last_weekend_day(today)
    return CanaryRequest(args.market, run_date, tag, args.allow_future_date)


def run(args: argparse.Namespace, root: PlannerRoot) -> int:
    """`worthy-batch plan --canary`."""
    if args.dry_run:
        raise ConfigError({"--canary": "cannot be combined with --dry-run"})
    settings, kind = planner_settings(args, root)
    request = canary_request(args, settings)
    deps = planner_deps(settings, kind, root, partial(datetime.now, UTC))
    started = datetime.now(UTC)
    result = plan_canary(deps, request)
    log.info("%s", result.message, extra={"run_id": result.run_id, "status": result.status})
    emit_plan_metrics(args.market, result, started)
    return 0


def plan_canary(deps: PlannerDeps, request: CanaryRequest) -> PlanResult:
    """The canary run of the request's day, checked as any run's day is, written and submitted."""
    checked = PlanRequest(
        request.market, request.run_date, allow_future_date=request.allow_future_date
    )
    market, run_date = resolve_run(checked, deps.clock)
    with log_context(run_id=run_id_for(market, run_date), market=market):
        log_catch_up(market, run_date, deps.clock)
        with deps.unit_of_work().runs() as runs:
            return _plan(deps, runs, market, run_date, request.tag)


def _plan(deps: PlannerDeps, runs: RunStore, market: str, run_date: date, tag: str) -> PlanResult:
    """Write and submit the canary run of `run_date`; `tag` makes its job names unique."""
    if run_date.weekday() < SATURDAY:
        raise ConfigError(
            {"--run-date": f"{run_date} is a weekday; a canary runs on a Saturday or Sunday"}
        )
    assert deps.store is not None and deps.submitter is not None
    try:
        release = deps.submitter.pin(Release(), strict=True)
    except TransientError as exc:  # Batch did not answer: no route to its endpoint
        raise Unreachable("AWS Batch", str(exc)) from None
    run_id = run_id_for(market, run_date)
    where = RunLocation.for_run(deps.bucket, deps.prefix, market, run_date, run_id)
    runs.lock(run_id)
    try:
        # An earlier canary's leftovers, or that weekend day's market_closed record.
        runs.delete_canary(run_id)
        runs.claim(run_id, market, run_date)
        runs.set_status(run_id, RunStatus.PLANNING, detail=CANARY)
        chunk = deps.store.put_chunk(where, 0, encode_chunk([]), items=0, symbols=0)
        manifest = RunManifest(
            schema_version=1,
            run_id=run_id,
            market=market,
            run_date=run_date,
            created_at=deps.clock(),
            item_count=0,
            chunk_count=1,
            chunks=[chunk],
            calendars=closures_of_run(market, run_date),
        )
        deps.store.put_manifest(where, manifest)
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
