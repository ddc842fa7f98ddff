"""The executor's report step: what the chunk's plans now record, told three ways.

results/N.json, the chunk's row in batch_chunks and one metrics line, all from
the outcomes the database holds (so a rerun that bought nothing still reports
what its plans' executions are).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from common.domain.models import ChunkResult, Failure, JobUsage
from common.domain.statuses import ChunkStatus, Execution, Reason
from common.logging import emit_metrics
from common.store.runs import RunRepository
from executor.context import ChunkRun
from executor.pricing import Pricing

State = list[tuple[int, str, str | None]]  # (plan_id, status, reason) per plan


def report_chunk(run: ChunkRun, pricing: Pricing, written: Mapping[str, int]) -> ChunkResult:
    """Write results/N.json, finish the chunk's row, emit the metrics; return the result."""
    runs = RunRepository(run.conn)
    state = runs.outcomes([(p.plan_id, p.scheduled_date) for p in run.plans])
    timings = {**run.timings, **pricing.timings, **written}
    usage = run.deps.usage() if run.deps.usage is not None else None
    result = chunk_result(run, pricing, state, run.deps.clock(), timings, usage)
    run.deps.store.put_result(run.where, result)
    succeeded = result.status == ChunkStatus.SUCCEEDED
    runs.finish_chunk(
        run.manifest.run_id,
        run.index,
        succeeded=succeeded,
        counts={"purchased": result.purchased, "skipped": result.skipped, "failed": result.failed},
        error=None if succeeded else f"{Reason.PROVIDER_ERROR}: providers failed",
    )
    emit_metrics(
        {
            "purchased": result.purchased,
            "skipped": result.skipped,
            "failed": result.failed,
            "api_calls": sum(pricing.api_calls.values()),
            "duration_ms": result.duration_ms,
        },
        market=run.manifest.market,
        stage="executor",
    )
    return result


def chunk_result(
    run: ChunkRun,
    pricing: Pricing,
    state: State,
    finished: datetime,
    timings: dict[str, int],
    usage: JobUsage | None = None,
) -> ChunkResult:
    """results/N.json from the plans' recorded outcomes (pure)."""
    statuses = Counter(status for _, status, _ in state)
    reasons = Counter(reason for _, status, reason in state if reason)
    failures = [
        Failure(plan_id=plan_id, status=status, reason=reason or "")  # type: ignore[arg-type]
        for plan_id, status, reason in sorted(state)
        if status != Execution.PURCHASED
    ]
    return ChunkResult(
        run_id=run.manifest.run_id,
        chunk_index=run.index,
        attempt=run.attempt,
        status=ChunkStatus.FAILED if reasons.get(Reason.PROVIDER_ERROR) else ChunkStatus.SUCCEEDED,
        started_at=run.started,
        finished_at=finished,
        duration_ms=max(0, int((finished - run.started).total_seconds() * 1000)),
        items=len(run.plans),
        purchased=statuses[Execution.PURCHASED],
        skipped=statuses[Execution.SKIPPED],
        failed=statuses[Execution.FAILED],
        reasons=dict(reasons),
        invested=_invested(run, state),
        api_calls=pricing.api_calls,
        quota_exhausted=pricing.quota_exhausted,
        failures=failures,
        timings_ms=timings,
        usage=usage,
    )


def _invested(run: ChunkRun, state: State) -> dict[str, Decimal]:
    """Currency -> the gross amount of the plans bought."""
    by_id = {p.plan_id: p for p in run.plans}
    invested: dict[str, Decimal] = {}
    for plan_id, status, _ in state:
        if status == Execution.PURCHASED:
            plan = by_id[plan_id]
            invested[plan.currency] = invested.get(plan.currency, Decimal(0)) + plan.amount
    return invested
