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

from common.adapters.marketdata.quotes import Price, PriceFailure
from common.domain.models import ChunkResult, Failure, JobUsage, PlanSnapshot
from common.domain.statuses import ChunkStatus, Execution, Reason
from common.platform.logging import emit_metrics
from executor.context import ChunkRun
from executor.pricing import Pricing

State = list[tuple[int, str, str | None]]  # (plan_id, status, reason) per plan


def report_chunk(run: ChunkRun, pricing: Pricing, written: Mapping[str, int]) -> ChunkResult:
    """Write results/N.json, finish the chunk's row, emit the metrics; return the result.
    `written` is the write step's timings."""
    runs = run.session.runs
    state = runs.outcomes([(p.plan_id, p.scheduled_date) for p in run.plans])
    timings = {**run.timings, **pricing.timings, **written}
    usage = run.deps.usage() if run.deps.usage is not None else None
    result = chunk_result(run, pricing, state, run.deps.clock(), timings, usage)
    run.deps.files.put_result(run.where, result)
    succeeded = result.status == ChunkStatus.SUCCEEDED
    runs.finish_chunk(
        run.manifest.run_id,
        run.index,
        succeeded=succeeded,
        counts={"purchased": result.purchased, "skipped": result.skipped, "failed": result.failed},
        error=None
        if succeeded
        else f"{Reason.PROVIDER_ERROR}: providers failed for "
        f"{result.reasons.get(Reason.PROVIDER_ERROR, 0)} plan(s); Batch retries the chunk",
    )
    emit_metrics(
        {
            "purchased": result.purchased,
            "skipped": result.skipped,
            "failed": result.failed,
            "api_calls": sum(pricing.api_calls.values()),
            "duration_ms": result.duration_ms,
            # From the run's planning to this attempt's start: the queue's wait and the
            # container's start-up on a first attempt (the dashboard's queue widget).
            "start_delay_ms": start_delay_ms(run),
        },
        market=run.manifest.market,
        stage="executor",
    )
    for provider, calls in sorted(pricing.api_calls.items()):
        emit_metrics({"api_calls": calls}, market=run.manifest.market, provider=provider)
    return result


def start_delay_ms(run: ChunkRun) -> int:
    """Milliseconds from the run's manifest being written to this attempt's start."""
    return max(0, int((run.started - run.manifest.created_at).total_seconds() * 1000))


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
    by_id = {p.plan_id: p for p in run.plans}
    failures = [
        Failure(
            plan_id=plan_id,
            status=status,  # type: ignore[arg-type]
            reason=reason or "",
            symbol=by_id[plan_id].symbol,
            detail=why_not_bought(by_id[plan_id], reason, pricing, run.deps.share_decimals),
        )
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


def why_not_bought(
    plan: PlanSnapshot, reason: str | None, pricing: Pricing, share_decimals: int
) -> str:
    """The detail behind a plan's reason, for the report: what the providers said, or what
    the amount buys at the run's price (pure)."""
    price = pricing.prices.get(plan.symbol)
    rate = pricing.rates.get((plan.currency, plan.asset_currency))
    if reason in (Reason.PRICE_UNAVAILABLE, Reason.PROVIDER_ERROR):
        if isinstance(price, PriceFailure):
            return price.detail
        if isinstance(rate, PriceFailure):
            return f"{plan.currency}->{plan.asset_currency} rate: {rate.detail}"
        if isinstance(price, Price) and price.currency and price.currency != plan.asset_currency:
            return (
                f"{price.source} quotes {plan.symbol} in {price.currency}, "
                f"the plan buys it in {plan.asset_currency}"
            )
        return ""
    if reason == Reason.AMOUNT_BELOW_MINIMUM and isinstance(price, Price):
        smallest = Decimal(1).scaleb(-share_decimals) if plan.fractional else "one"
        money = f"{plan.amount - plan.fee} {plan.currency} (amount less fee)"
        if plan.currency != plan.asset_currency and isinstance(rate, Price):
            converted = ((plan.amount - plan.fee) * rate.value).quantize(Decimal("0.01"))
            money += f" = {converted} {plan.asset_currency}"
        return (
            f"{money} buys less than {smallest} share of {plan.symbol} "
            f"at {price.value} {plan.asset_currency}"
        )
    if reason == Reason.PLAN_CHANGED:
        return "edited, paused or cancelled after the snapshot; the next run buys what it is now"
    return ""


def _invested(run: ChunkRun, state: State) -> dict[str, Decimal]:
    """Currency -> the gross amount of the plans bought."""
    by_id = {p.plan_id: p for p in run.plans}
    invested: dict[str, Decimal] = {}
    for plan_id, status, _ in state:
        if status == Execution.PURCHASED:
            plan = by_id[plan_id]
            invested[plan.currency] = invested.get(plan.currency, Decimal(0)) + plan.amount
    return invested
