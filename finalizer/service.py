"""The finalizer's service: aggregate every chunk's results into report.json, close the run.

Like Step Functions' ResultWriter: the report lists succeeded, failed and
pending chunks, outcome counts by reason, money invested by currency, API
calls and keys skipped for a spent daily budget (`quota_exhausted`) by provider,
each chunk's timings, every plan not bought with its symbol, reason and
provider detail, the rows the planner found invalid, and why each chunk that
did not succeed last failed. The run becomes `succeeded`
(every chunk succeeded), `partial` (some did) or `failed` (none did). Safe to
run again: it rewrites the same report from the same results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from common.adapters.ports import RunFiles, RunStore
from common.adapters.store.runs import CANARY, InvalidRows, RunRecord
from common.domain.calendar import today_at
from common.domain.errors import InputError
from common.domain.models import ChunkResult, JobUsage
from common.domain.run_key import RunLocation
from common.domain.statuses import ChunkStatus, RunStatus
from common.platform.logging import get_logger
from finalizer.cost import Prices, cost_report

log = get_logger(__name__)
MAX_LISTED_FAILURES = 1000


@dataclass(frozen=True)
class Finalized:
    status: str
    report: dict[str, Any]
    report_uri: str
    canary: bool = False  # the smoke test's probe: its rows are gone, it is no market day


@dataclass(frozen=True)
class Costing:
    """What report.json's `cost` needs besides the run: prices, and this job's own usage
    so far (common/adapters/jobclock.py)."""

    prices: Prices
    usage: Callable[[], JobUsage]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def finalize_run(
    runs: RunStore,
    store: RunFiles,
    run_id: str,
    clock: Callable[[], datetime] = _utc_now,
    costing: Costing | None = None,
) -> Finalized:
    run = runs.require(run_id)
    if not run.manifest_uri:
        raise InputError(f"run {run_id} has no manifests in this database; nothing to finalize")
    where = RunLocation.from_manifest_uri(run.manifest_uri)
    chunks = runs.chunks(run_id)
    results = store.load_results(where, len(chunks))
    report = build_report(
        run,
        [(c.chunk_index, c.status, c.attempts) for c in chunks],
        results,
        clock(),
        invalid=runs.invalid_rows(run_id, MAX_LISTED_FAILURES),
        chunk_errors={c.chunk_index: c.last_error for c in chunks if c.last_error},
    )
    if costing is not None:
        report["cost"] = run_cost(runs, run_id, len(chunks), results, report, costing)
    status = report["status"]
    store.put_report(where, report)
    runs.set_status(run_id, status)
    uri = f"s3://{where.bucket}/{where.report_key}"
    if run.detail == CANARY:
        # The report proves the finalizer can write; the run itself was only a probe.
        runs.delete_canary(run_id)
        log.info("canary %s: report written, rows deleted", run_id)
        return Finalized(status, report, uri, canary=True)
    return Finalized(status, report, uri)


def build_report(
    run: RunRecord,
    chunks: list[tuple[int, str, int]],
    results: dict[int, ChunkResult],
    finalized_at: datetime,
    *,
    invalid: InvalidRows | None = None,
    chunk_errors: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """The run's outcome from its chunks' statuses and results (pure); `invalid` lists the
    rows the planner skipped, `chunk_errors` why a chunk last failed."""
    errors = chunk_errors or {}
    succeeded = [i for i, status, _ in chunks if status == ChunkStatus.SUCCEEDED]
    failed = [i for i, status, _ in chunks if status == ChunkStatus.FAILED]
    pending = [
        i for i, status, _ in chunks if status not in (ChunkStatus.SUCCEEDED, ChunkStatus.FAILED)
    ]
    # A run with nothing due has no chunk and succeeded (the planner closed it so); any
    # other run without chunk rows never ran.
    if len(succeeded) == len(chunks) and (chunks or run.chunk_count == 0):
        status = RunStatus.SUCCEEDED
    else:
        status = RunStatus.PARTIAL if succeeded else RunStatus.FAILED
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    api_calls: Counter[str] = Counter()
    quota_exhausted: Counter[str] = Counter()
    invested: dict[str, Decimal] = {}
    failures: list[dict[str, Any]] = []
    timings = []
    for index in sorted(results):
        result = results[index]
        counts.update(purchased=result.purchased, skipped=result.skipped, failed=result.failed)
        reasons.update(result.reasons)
        api_calls.update(result.api_calls)
        quota_exhausted.update(result.quota_exhausted)
        for currency, amount in result.invested.items():
            invested[currency] = invested.get(currency, Decimal(0)) + amount
        failures.extend(
            {
                "chunk": index,
                "plan_id": f.plan_id,
                "symbol": f.symbol or None,
                "status": f.status,
                "reason": f.reason,
                "detail": f.detail or None,
            }
            for f in result.failures
        )
        timings.append(
            {
                "chunk": index,
                "attempt": result.attempt,
                "items": result.items,
                "duration_ms": result.duration_ms,
                **result.timings_ms,
            }
        )
    return {
        "schema_version": 1,
        "run_id": run.run_id,
        "market": run.market,
        "run_date": run.run_date.isoformat(),
        # Planned after its day had passed in the market's time zone: a catch-up run,
        # which buys at the prices of the day it ran, not of its run date.
        "catch_up": run.run_date < today_at(run.market, run.created_at),
        "status": status,
        "finalized_at": finalized_at.isoformat(timespec="seconds"),
        "plans_due": run.plans_due or 0,
        "invalid_plans": run.invalid_plans or 0,
        "chunks": {
            "total": len(chunks),
            "succeeded": len(succeeded),
            "failed": failed,
            "pending": pending,
        },
        "outcomes": dict(counts),
        "reasons": dict(sorted(reasons.items())),
        "invested": {c: str(a) for c, a in sorted(invested.items())},
        "api_calls": dict(sorted(api_calls.items())),
        "quota_exhausted": dict(sorted(quota_exhausted.items())),
        "chunk_timings": timings,
        "failures": failures[:MAX_LISTED_FAILURES],
        "failures_total": len(failures),
        "redrives": run.redrives,
        "invalid_rows": _invalid_rows(invalid),
        "chunk_errors": [
            {"chunk": i, "status": status, "attempts": attempts, "reason": errors.get(i)}
            for i, status, attempts in chunks
            if status != ChunkStatus.SUCCEEDED
        ],
    }


def _invalid_rows(invalid: InvalidRows | None) -> dict[str, Any]:
    if invalid is None:
        return {"count": 0, "reasons": {}, "listed": []}
    return {
        "count": invalid.count,
        "reasons": invalid.reasons,
        "listed": [
            {"plan_id": plan_id, "symbol": symbol, "reason": reason}
            for plan_id, symbol, reason in invalid.rows
        ],
    }


def run_cost(
    runs: RunStore,
    run_id: str,
    chunk_count: int,
    results: dict[int, ChunkResult],
    report: dict[str, Any],
    costing: Costing,
) -> dict[str, Any]:
    """report.json's `cost`: the planner's usage recorded on the run, each chunk's last
    attempt's from its result, this finalizer's until now; priced (finalizer/cost.py)."""
    planner = runs.planner_usage(run_id)
    executors = [r.usage for r in results.values() if r.usage is not None]
    jobs = {
        "planner": [planner] if planner is not None else [],
        "executor": executors,
        "finalizer": [costing.usage()],
    }
    unmeasured = (planner is None) + chunk_count - len(executors)
    return cost_report(jobs, unmeasured, report["api_calls"], costing.prices)
