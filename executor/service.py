"""The executor's service function: one chunk, start to results.

load + verify          run.json and chunk N (nothing is written before this passes)
price                  each symbol and FX base once per run (run_quotes)
decide + apply         in batches, each one database transaction
report                 results/N.json, the chunk's row, metrics
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from psycopg2.extensions import connection

from common.db import round_trips
from common.domain.calendar import calendar_for
from common.domain.models import ChunkResult, Failure, PlanSnapshot, RunManifest
from common.domain.statuses import ChunkStatus, Execution, Reason
from common.errors import ConfigError, ProvidersUnavailable
from common.logging import emit_metrics, get_logger, log_context
from common.manifest_store import ManifestStore, RunLocation
from common.marketdata.bootstrap import MarketData
from common.store.ledger import Ledger
from common.store.quotes import RunQuotes
from common.store.runs import RunRepository
from executor.decisions import decide
from executor.pricing import QuoteBook
from executor.writing import write_batches

log = get_logger(__name__)
T = TypeVar("T")


@dataclass
class ExecutorDeps:
    connect: Callable[[], connection]
    store: ManifestStore
    market_data: MarketData
    clock: Callable[[], datetime]
    write_batch_size: int
    write_connections: int
    share_decimals: int
    price_fetch_threads: int = 1
    # Provider key variables that are not set; a canary chunk refuses to run with any.
    missing_keys: tuple[str, ...] = ()


def execute_chunk(deps: ExecutorDeps, where: RunLocation, index: int) -> ChunkResult:
    """Run chunk `index` of the run at `where`. Raises ProvidersUnavailable (exit 75) at the
    end when plans are left failed with `provider_error`, so that Batch retries the chunk."""
    started, ticks = deps.clock(), time.monotonic()
    manifest = deps.store.load_manifest(where)
    if manifest.item_count == 0:
        # Only the smoke test's canary submits a run without plans (a real day with
        # nothing due is closed by the planner): prove the secrets are all there,
        # without calling a provider, which the empty chunk never does.
        if deps.missing_keys:
            raise ConfigError(dict.fromkeys(deps.missing_keys, "missing (the canary checks all)"))
        log.info("canary: every provider key is set", extra={"run_id": manifest.run_id})
    plans = deps.store.load_chunk(where, manifest, index)
    timings = {"load_ms": _ms(ticks)}
    with log_context(run_id=manifest.run_id, chunk_index=index, market=manifest.market):
        conn = deps.connect()
        try:
            result = _execute(deps, conn, where, manifest, index, plans, started, timings)
        finally:
            conn.close()
    if result.status == ChunkStatus.FAILED:
        raise ProvidersUnavailable(result.reasons.get(Reason.PROVIDER_ERROR, 0))
    return result


def _execute(
    deps: ExecutorDeps,
    conn: connection,
    where: RunLocation,
    manifest: RunManifest,
    index: int,
    plans: list[PlanSnapshot],
    started: datetime,
    timings: dict[str, int],
) -> ChunkResult:
    runs = RunRepository(conn)
    attempt = runs.start_chunk(manifest.run_id, index)
    log.info("chunk started: %d plan(s), attempt %d", len(plans), attempt)
    ticks = time.monotonic()
    book = QuoteBook(
        RunQuotes(conn, manifest.run_id),
        deps.market_data.chain,
        manifest.run_date,
        calendar_for(manifest.market).timezone,
        deps.price_fetch_threads,
    )
    prices = book.prices(p.symbol for p in plans)
    rates = book.fx_rates(
        (p.currency, p.asset_currency) for p in plans if p.currency != p.asset_currency
    )
    api_calls = dict(deps.market_data.calls)
    quota_exhausted = dict(deps.market_data.chain.quota_exhausted)
    timings["price_ms"] = _ms(ticks)
    timings.update(deps.market_data.pacing_timings())
    # Pricing is done: give the quota store's connection back before the writers take theirs.
    deps.market_data.quota_store.close()

    ticks = time.monotonic()
    # One batch in flight per connection: a chunk of fewer batches needs fewer of them.
    batches = -(-len(plans) // deps.write_batch_size)
    extra = [deps.connect() for _ in range(min(deps.write_connections, batches) - 1)]
    try:
        ledgers = [Ledger(c, manifest.run_id, index, manifest.run_date) for c in [conn, *extra]]
        write_batches(
            ledgers,
            (
                Ledger.prepare(
                    [
                        decide(
                            p,
                            prices[p.symbol],
                            rates.get((p.currency, p.asset_currency)),
                            run_date=manifest.run_date,
                            share_decimals=deps.share_decimals,
                        )
                        for p in batch
                    ]
                )
                for batch in _batches(plans, deps.write_batch_size)
            ),
        )
        trips = sum(round_trips(c) for c in [conn, *extra])
    finally:
        for c in extra:
            c.close()
    timings["write_ms"] = _ms(ticks)

    state = runs.outcomes([(p.plan_id, p.scheduled_date) for p in plans])
    result = _result(
        manifest,
        index,
        attempt,
        plans,
        state,
        started,
        deps.clock(),
        timings,
        api_calls,
        quota_exhausted,
        trips,
    )
    deps.store.put_result(where, result)
    runs.finish_chunk(
        manifest.run_id,
        index,
        succeeded=result.status == ChunkStatus.SUCCEEDED,
        counts={"purchased": result.purchased, "skipped": result.skipped, "failed": result.failed},
        error=None
        if result.status == ChunkStatus.SUCCEEDED
        else f"{Reason.PROVIDER_ERROR}: providers failed",
    )
    emit_metrics(
        {
            "purchased": result.purchased,
            "skipped": result.skipped,
            "failed": result.failed,
            "api_calls": sum(api_calls.values()),
            "duration_ms": result.duration_ms,
        },
        market=manifest.market,
        stage="executor",
    )
    log.info(
        "chunk finished: %d purchased, %d skipped, %d failed",
        result.purchased,
        result.skipped,
        result.failed,
    )
    return result


def _result(
    manifest: RunManifest,
    index: int,
    attempt: int,
    plans: Sequence[PlanSnapshot],
    state: list[tuple[int, str, str | None]],
    started: datetime,
    finished: datetime,
    timings: dict[str, int],
    api_calls: dict[str, int],
    quota_exhausted: dict[str, int],
    db_round_trips: int,
) -> ChunkResult:
    statuses = Counter(status for _, status, _ in state)
    reasons = Counter(reason for _, status, reason in state if reason)
    by_id = {p.plan_id: p for p in plans}
    invested: dict[str, Decimal] = {}
    for plan_id, status, _ in state:
        if status == Execution.PURCHASED:
            plan = by_id[plan_id]
            invested[plan.currency] = invested.get(plan.currency, Decimal(0)) + plan.amount
    failures = [
        Failure(plan_id=plan_id, status=status, reason=reason or "")  # type: ignore[arg-type]
        for plan_id, status, reason in sorted(state)
        if status != Execution.PURCHASED
    ]
    return ChunkResult(
        run_id=manifest.run_id,
        chunk_index=index,
        attempt=attempt,
        status=ChunkStatus.FAILED if reasons.get(Reason.PROVIDER_ERROR) else ChunkStatus.SUCCEEDED,
        started_at=started,
        finished_at=finished,
        duration_ms=max(0, int((finished - started).total_seconds() * 1000)),
        items=len(plans),
        purchased=statuses[Execution.PURCHASED],
        skipped=statuses[Execution.SKIPPED],
        failed=statuses[Execution.FAILED],
        reasons=dict(reasons),
        invested=invested,
        api_calls=api_calls,
        quota_exhausted=quota_exhausted,
        failures=failures,
        timings_ms={**timings, "db_round_trips": db_round_trips},
    )


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)
