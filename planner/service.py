"""The planner's service function: one market day from claim to submission. The day comes
resolved and checked (`PlanRequest.day`, from common/domain/calendar.py `resolve_run_day`).

closed day?            record market_closed, done
claim the run          (under its advisory lock; a finished run is left alone)
pin the release        the queue checked, job definitions as revisions (nothing is written
                       when they cannot be found)
snapshot + manifests   unless submission already started; a day whose estimate cannot
                       fit an executor attempt is refused here, before anything is written;
                       the release and the attempt timeout recorded on the run
submit                 exactly once, job ids recorded as they appear
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from common.adapters.ports import PlannerStores, RunFiles, RunStore
from common.adapters.submitters import JobSubmitter, Release, RunToSubmit
from common.domain.calendar import RunDay
from common.domain.errors import ConfigError
from common.domain.models import JobUsage
from common.domain.run_key import RunLocation
from common.domain.statuses import FINISHED_RUN, RunStatus
from common.platform.failpoints import failpoint
from common.platform.logging import get_logger, log_context
from planner.manifests import write_run
from planner.request import PlanRequest

log = get_logger(__name__)


@dataclass
class PlannerDeps:
    stores: PlannerStores  # the runs, the snapshot and the invalid plans
    files: RunFiles | None  # the run's files in S3; None for a dry run
    bucket: str
    prefix: str
    submitter: JobSubmitter | None
    clock: Callable[[], datetime]
    # The planner job's usage so far (common/adapters/jobclock.py), recorded on the run as it
    # submits; None: not measured.
    usage: Callable[[], JobUsage] | None = None


@dataclass(frozen=True)
class PlanResult:
    run_id: str
    status: str
    message: str
    plans_due: int = 0
    chunk_count: int = 0
    manifest_uri: str | None = None


def log_catch_up(day: RunDay) -> None:
    """Say so when the run's date is before the market's today: a catch-up run."""
    if day.catch_up:
        log.info(
            "catch-up run for %s (today is %s in %s)",
            day.key.run_date,
            day.today,
            day.key.market,
            extra={"catch_up": True},
        )


def plan_run(deps: PlannerDeps, request: PlanRequest) -> PlanResult:
    day = request.day
    key = day.key
    with log_context(run_id=key.run_id, market=key.market):
        log_catch_up(day)
        with deps.stores.runs() as runs:
            if day.closed:
                runs.record_market_closed(key, day.closed)
                return PlanResult(
                    key.run_id,
                    RunStatus.MARKET_CLOSED,
                    f"market {key.market} is closed on {key.run_date} ({day.closed}); "
                    "nothing to do",
                )
            runs.lock(key.run_id)
            try:
                return _plan_locked(deps, request, runs)
            finally:
                runs.unlock(key.run_id)


def _plan_locked(deps: PlannerDeps, request: PlanRequest, runs: RunStore) -> PlanResult:
    key = request.day.key
    run_id = key.run_id
    run = runs.claim(key)
    failpoint("planner.after_claim")
    if run.status in FINISHED_RUN:
        return PlanResult(
            run_id,
            run.status,
            f"run {run_id} is already complete ({run.status}); nothing to do",
            run.plans_due or 0,
            run.chunk_count or 0,
            run.manifest_uri,
        )
    if run.status == RunStatus.SUBMITTED:
        return PlanResult(
            run_id,
            run.status,
            f"run {run_id} was already submitted; "
            f"see `worthy-batch status --run-id {run_id}` (or redrive)",
            run.plans_due or 0,
            run.chunk_count or 0,
            run.manifest_uri,
        )
    assert deps.files is not None and deps.submitter is not None
    where = RunLocation.for_run(deps.bucket, deps.prefix, key)
    if run.status in (RunStatus.PLANNING, RunStatus.MANIFESTED):
        # Nothing was submitted yet, so the manifests may be (re)written from a fresh snapshot.
        try:
            pinned = deps.submitter.pin(Release())
            manifest, timeout = write_run(deps.stores, runs, deps.files, where, request, deps.clock)
        except ConfigError:  # a refused day, or a release that cannot be found
            runs.forget_refused(run_id)
            raise
        release = replace(pinned, executor_timeout_seconds=timeout)
        runs.record_release(run_id, release)
    else:  # RunStatus.SUBMITTING: manifests are final; finish the submission without repeating it.
        log.info("resuming an interrupted submission")
        manifest = deps.files.load_manifest(where)
        release = runs.release_of(run_id) or deps.submitter.pin(Release())
    if manifest.chunk_count == 0:
        runs.set_status(run_id, RunStatus.SUCCEEDED, detail="nothing due")
        return PlanResult(
            run_id,
            RunStatus.SUCCEEDED,
            f"nothing due on {key.run_date} for {key.market}",
            0,
            0,
            where.manifest_uri,
        )
    failpoint("planner.after_manifests")
    runs.set_status(run_id, RunStatus.SUBMITTING)
    if deps.usage is not None:
        runs.record_planner_usage(run_id, deps.usage())
    message = deps.submitter.submit(
        RunToSubmit(run_id, where.manifest_uri, manifest.chunk_count, release=release),
        lambda **jobs: runs.record_job(run_id, **jobs),
    )
    failpoint("planner.after_submit")
    runs.advance(run_id, RunStatus.SUBMITTING, RunStatus.SUBMITTED)
    final = runs.get(run_id)
    return PlanResult(
        run_id,
        final.status if final else RunStatus.SUBMITTED,
        f"planned {manifest.item_count} plan(s) in {manifest.chunk_count} chunk(s); {message}",
        manifest.item_count,
        manifest.chunk_count,
        where.manifest_uri,
    )
