"""The executor's service function: one chunk, start to results.

load + verify          run.json and chunk N (nothing is written before this passes)
price                  each symbol and FX base once per run (run_quotes)    pricing.py
decide + write         in batches, each one database transaction           writing.py
report                 results/N.json, the chunk's row, metrics            report.py
"""

from __future__ import annotations

import time

from common.domain.models import ChunkResult, RunManifest
from common.domain.statuses import ChunkStatus, Reason
from common.errors import ConfigError, ProvidersUnavailable
from common.logging import get_logger, log_context
from common.manifest_store import RunLocation
from common.store.runs import RunRepository
from executor.canary import prove_network
from executor.context import ChunkRun, ExecutorDeps, elapsed_ms
from executor.pricing import price_chunk
from executor.report import report_chunk
from executor.writing import write_chunk

__all__ = ["ExecutorDeps", "execute_chunk"]

log = get_logger(__name__)


def execute_chunk(deps: ExecutorDeps, where: RunLocation, index: int) -> ChunkResult:
    """Run chunk `index` of the run at `where`. Raises ProvidersUnavailable (exit 75) at the
    end when plans are left failed with `provider_error`, so that Batch retries the chunk."""
    started, ticks = deps.clock(), time.monotonic()
    manifest = deps.store.load_manifest(where)
    if manifest.item_count == 0:
        _check_canary(deps, manifest)
        log.info("%s", prove_network(deps.market_data.chain, manifest.market, manifest.run_date))
    plans = deps.store.load_chunk(where, manifest, index)
    timings = {"load_ms": elapsed_ms(ticks)}
    with log_context(run_id=manifest.run_id, chunk_index=index, market=manifest.market):
        conn = deps.connect()
        try:
            attempt = RunRepository(conn).start_chunk(manifest.run_id, index)
            log.info("chunk started: %d plan(s), attempt %d", len(plans), attempt)
            run = ChunkRun(
                deps=deps,
                where=where,
                manifest=manifest,
                index=index,
                plans=plans,
                conn=conn,
                attempt=attempt,
                started=started,
                timings=timings,
                calendars={mic: c.calendar(mic) for mic, c in manifest.calendars.items()},
            )
            pricing = price_chunk(run)
            written = write_chunk(run, pricing)
            result = report_chunk(run, pricing, written)
        finally:
            conn.close()
        log.info(
            "chunk finished: %d purchased, %d skipped, %d failed",
            result.purchased,
            result.skipped,
            result.failed,
        )
    if result.status == ChunkStatus.FAILED:
        raise ProvidersUnavailable(result.reasons.get(Reason.PROVIDER_ERROR, 0))
    return result


def _check_canary(deps: ExecutorDeps, manifest: RunManifest) -> None:
    """Only the smoke test's canary submits a run without plans (a real day with nothing
    due is closed by the planner): prove the secrets are all there before the network."""
    if deps.missing_keys:
        raise ConfigError(dict.fromkeys(deps.missing_keys, "missing (the canary checks all)"))
    log.info("canary: every provider key is set", extra={"run_id": manifest.run_id})
