"""The planner's service function: one market day from claim to submission.

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
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from psycopg2.extensions import connection

from common.adapters.manifest_store import RunLocation
from common.adapters.ports import PlannerStores, RunFiles, RunStore
from common.adapters.store.unit_of_work import PostgresStores
from common.adapters.submitters import JobSubmitter, Release, RunToSubmit
from common.domain.calendar import RunDateRefused, calendar_for, check_run_date, run_market_of
from common.domain.chunking import ChunkPolicy
from common.domain.models import JobUsage, run_id_for
from common.domain.statuses import FINISHED_RUN, RunStatus
from common.platform.errors import ConfigError
from common.platform.failpoints import failpoint
from common.platform.logging import get_logger, log_context
from planner.estimate import PricingLimits
from planner.manifests import write_run

log = get_logger(__name__)


@dataclass(frozen=True)
class PlanRequest:
    market: str
    run_date: date | None
    chunking: ChunkPolicy = ChunkPolicy()  # CHUNK_SIZE, else sized from the work
    workers: int = 1  # processes that validate and compress chunks on big runs
    pricing: PricingLimits | None = None  # to estimate the pricing time; None: no estimate
    allow_future_date: bool = False  # --allow-future-date: the operator means a later day


@dataclass
class PlannerDeps:
    connect: Callable[[], connection]
    store: RunFiles | None  # None for a dry run
    bucket: str
    prefix: str
    submitter: JobSubmitter | None
    clock: Callable[[], datetime]
    # The planner job's usage so far (common/adapters/jobclock.py), recorded on the run as it
    # submits; None: not measured.
    usage: Callable[[], JobUsage] | None = None
    # The runs, the snapshot and the invalid plans; None: PostgreSQL through `connect`.
    stores: PlannerStores | None = field(default=None, kw_only=True)

    def unit_of_work(self) -> PlannerStores:
        return self.stores if self.stores is not None else PostgresStores(self.connect)


@dataclass(frozen=True)
class PlanResult:
    run_id: str
    status: str
    message: str
    plans_due: int = 0
    chunk_count: int = 0
    manifest_uri: str | None = None


def resolve_run(request: PlanRequest, clock: Callable[[], datetime]) -> tuple[str, date]:
    """The run's market and date, checked: unknown or secondary markets are configuration errors."""
    try:
        calendar = calendar_for(request.market)
    except ValueError as exc:
        raise ConfigError({"--market": str(exc)}) from None
    owner = run_market_of(request.market)
    if owner != request.market:
        raise ConfigError(
            {
                "--market": f"{request.market} plans run in the {owner} run (same calendar); "
                f"use --market {owner}"
            }
        )
    today = calendar.today(clock())
    run_date = request.run_date or today
    try:
        check_run_date(request.market, run_date, today, allow_future=request.allow_future_date)
    except RunDateRefused as exc:
        raise ConfigError({"--run-date": str(exc)}) from None
    return request.market, run_date


def log_catch_up(market: str, run_date: date, clock: Callable[[], datetime]) -> None:
    """Say so when the run's date is before the market's today: a catch-up run."""
    today = calendar_for(market).today(clock())
    if run_date < today:
        log.info(
            "catch-up run for %s (today is %s in %s)",
            run_date,
            today,
            market,
            extra={"catch_up": True},
        )


def plan_run(deps: PlannerDeps, request: PlanRequest) -> PlanResult:
    market, run_date = resolve_run(request, deps.clock)
    run_id = run_id_for(market, run_date)
    with log_context(run_id=run_id, market=market):
        log_catch_up(market, run_date, deps.clock)
        closed = calendar_for(market).closure_name(run_date)
        with deps.unit_of_work().runs() as runs:
            if closed:
                runs.record_market_closed(run_id, market, run_date, closed)
                return PlanResult(
                    run_id,
                    RunStatus.MARKET_CLOSED,
                    f"market {market} is closed on {run_date} ({closed}); nothing to do",
                )
            runs.lock(run_id)
            try:
                return _plan_locked(deps, request, runs, run_id, market, run_date)
            finally:
                runs.unlock(run_id)


def _plan_locked(
    deps: PlannerDeps,
    request: PlanRequest,
    runs: RunStore,
    run_id: str,
    market: str,
    run_date: date,
) -> PlanResult:
    run = runs.claim(run_id, market, run_date)
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
    assert deps.store is not None and deps.submitter is not None
    where = RunLocation.for_run(deps.bucket, deps.prefix, market, run_date, run_id)
    if run.status in (RunStatus.PLANNING, RunStatus.MANIFESTED):
        # Nothing was submitted yet, so the manifests may be (re)written from a fresh snapshot.
        try:
            pinned = deps.submitter.pin(Release())
            manifest, timeout = write_run(
                deps.unit_of_work(),
                runs,
                deps.store,
                where,
                run_id,
                market,
                run_date,
                request.chunking,
                deps.clock,
                request.workers,
                request.pricing,
            )
        except ConfigError:  # a refused day, or a release that cannot be found
            runs.forget_refused(run_id)
            raise
        release = replace(pinned, executor_timeout_seconds=timeout)
        runs.record_release(run_id, release)
    else:  # RunStatus.SUBMITTING: manifests are final; finish the submission without repeating it.
        log.info("resuming an interrupted submission")
        manifest = deps.store.load_manifest(where)
        release = runs.release_of(run_id) or deps.submitter.pin(Release())
    if manifest.chunk_count == 0:
        runs.set_status(run_id, RunStatus.SUCCEEDED, detail="nothing due")
        return PlanResult(
            run_id,
            RunStatus.SUCCEEDED,
            f"nothing due on {run_date} for {market}",
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
