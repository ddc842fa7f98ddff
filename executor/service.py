"""The executor's service function: one chunk, start to results.

load + verify          run.json and chunk N (nothing is written before this passes)
price                  each symbol and FX base once per run (run_quotes)    pricing.py
decide + write         in batches, each one database transaction           writing.py
report                 results/N.json, the chunk's row, metrics            report.py
"""

from __future__ import annotations

import time
from collections import Counter

from common.adapters.error_map import database_cannot_hear, translated
from common.domain.errors import (
    ConfigError,
    ProvidersUnavailable,
    WorthyError,
)
from common.domain.models import ChunkResult, RunManifest
from common.domain.run_key import RunLocation
from common.domain.statuses import ChunkStatus, Execution, Reason
from common.platform.logging import get_logger, log_context
from common.platform.redact import redact
from executor.canary import prove_network
from executor.context import ChunkRun, ExecutorDeps, elapsed_ms
from executor.pricing import price_chunk
from executor.report import report_chunk
from executor.writing import write_chunk

__all__ = ["ExecutorDeps", "execute_chunk"]

log = get_logger(__name__)
MAX_ERROR_TEXT = 500  # characters of batch_chunks.last_error


def execute_chunk(deps: ExecutorDeps, where: RunLocation, index: int) -> ChunkResult:
    """Run chunk `index` of the run at `where`. Raises ProvidersUnavailable (exit 75) at the
    end when plans are left failed with `provider_error`, so that Batch retries the chunk.
    Whatever else stops an attempt is recorded on the chunk's row (`status` shows it), then
    raised."""
    started, ticks = deps.clock(), time.monotonic()
    try:
        manifest = deps.files.load_manifest(where)
        if manifest.item_count == 0:
            _check_canary(deps, manifest)
            log.info(
                "%s", prove_network(deps.market_data.chain(), manifest.market, manifest.run_date)
            )
        plans = deps.files.load_chunk(where, manifest, index)
    except WorthyError as exc:
        _record_failure(deps, where.run_id, index, exc, started=False)
        raise
    timings = {"load_ms": elapsed_ms(ticks)}
    with log_context(run_id=manifest.run_id, chunk_index=index, market=manifest.market):
        stores = deps.stores
        with stores.chunk(manifest.run_id, index, manifest.run_date) as session:
            attempt = session.runs.start_chunk(manifest.run_id, index)
            log.info("chunk started: %d plan(s), attempt %d", len(plans), attempt)
            run = ChunkRun(
                deps=deps,
                where=where,
                manifest=manifest,
                index=index,
                plans=plans,
                session=session,
                attempt=attempt,
                started=started,
                timings=timings,
                calendars={mic: c.calendar(mic) for mic, c in manifest.calendars.items()},
            )
            try:
                pricing = price_chunk(run)
                written = write_chunk(run, pricing)
                result = report_chunk(run, pricing, written.timings)
            except Exception as exc:  # recorded for `status`, then raised as it was
                _record_failure(deps, manifest.run_id, index, exc, started=True)
                raise
        log.info("chunk finished: %s", finished_line(result, written.recorded))
    if result.status == ChunkStatus.FAILED:
        raise ProvidersUnavailable(result.reasons.get(Reason.PROVIDER_ERROR, 0))
    return result


def _record_failure(
    deps: ExecutorDeps, run_id: str, index: int, exc: Exception, *, started: bool
) -> None:
    """Note on the chunk's row why this attempt failed, on a connection of its own (the
    chunk's may be what failed). Not when the database is the trouble: it cannot hear."""
    if database_cannot_hear(exc):
        return
    # A deliberate error knows its exit code; anything else is sorted at the process edge.
    what = f"exit {int(exc.exit_code)}: {exc}" if isinstance(exc, WorthyError) else repr(exc)
    error = " ".join(redact(what).split())[:MAX_ERROR_TEXT]
    try:
        with translated(f"recording why chunk {index} failed"), deps.stores.runs() as runs:
            runs.fail_chunk(run_id, index, error, started=started)
    except WorthyError as lost:
        log.warning("chunk %d: could not record why it failed (%s)", index, lost)


def finished_line(result: ChunkResult, recorded: Counter[str]) -> str:
    """`3 purchased, 158 already done, 1 skipped, 1 failed`: what this attempt bought, apart
    from what an earlier attempt (or a duplicate child) had bought already."""
    bought_now = recorded[Execution.PURCHASED]
    text = f"{bought_now} purchased"
    if result.purchased > bought_now:
        text += f", {result.purchased - bought_now} already done"
    return f"{text}, {result.skipped} skipped, {result.failed} failed"


def _check_canary(deps: ExecutorDeps, manifest: RunManifest) -> None:
    """Only the smoke test's canary submits a run without plans (a real day with nothing
    due is closed by the planner): prove the secrets are all there before the network."""
    if deps.missing_keys:
        raise ConfigError(dict.fromkeys(deps.missing_keys, "missing (the canary checks all)"))
    log.info("canary: every provider key is set", extra={"run_id": manifest.run_id})
