"""Snapshot the due plans and write the run's manifests to S3.

Rows stream from the database already ordered by chunk, so one chunk is
built at a time; uploads run in a small thread pool with a bounded number in
flight, so memory stays flat however many plans are due. Invalid rows are
recorded as `skipped` / `invalid_plan: ...` as they are met. run.json is
written last: its presence means every chunk it lists is in place.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from operator import itemgetter

from common.adapters.ports import InvalidPlanSink, PlannerStores, RunFiles, RunStore
from common.adapters.store.snapshot import DueQuery
from common.domain.chunking import chunk_the_day
from common.domain.models import ChunkRef, RunManifest, closures_of_run
from common.domain.run_key import RunLocation
from common.platform.failpoints import failpoint
from common.platform.logging import get_logger
from planner.estimate import checked_timeout, estimate_run, largest_chunk
from planner.prepare import PARALLEL_FROM_PLANS, PreparedChunk, prepared_chunks
from planner.request import PlanRequest

log = get_logger(__name__)

UPLOAD_THREADS = 8
MAX_IN_FLIGHT = 32


def write_run(
    stores: PlannerStores,
    runs: RunStore,
    files: RunFiles,
    where: RunLocation,
    request: PlanRequest,
    clock: Callable[[], datetime],
) -> tuple[RunManifest, int | None]:
    """Snapshot, chunk, upload; record the chunks and mark the run `manifested`. With
    `request.pricing`, log the calls the run needs and their time, and return the executor
    attempt's timeout (else None); raise EstimateTooLong, before any upload, when the
    day cannot fit an attempt."""
    key = request.day.key
    run_id, pricing, chunking_policy = key.run_id, request.pricing, request.chunking
    with stores.invalid_plans(run_id) as invalid:
        with stores.snapshot(DueQuery(key)) as snapshot:
            demand = snapshot.demand()
            counts = demand.counts_by_symbol
            estimate = estimate_run(snapshot, demand, run_id, pricing) if pricing else None
            chunking, why = chunk_the_day(
                counts, chunking_policy, estimate.seconds if estimate else None
            )
            log.info(
                "snapshot: %d due row(s), %d symbol(s); %s",
                sum(counts.values()),
                len(counts),
                why,
                extra={"chunks": len(chunking.chunks)},
            )
            timeout = None
            if estimate is not None and pricing is not None:
                log.info(
                    "pricing: %s", estimate, extra={"pricing_seconds": round(estimate.seconds)}
                )
                timeout = checked_timeout(
                    estimate, largest_chunk(chunking), chunking_policy.cost, pricing
                )
                log.info("executor attempt timeout: %d s", timeout)
            due = sum(counts.values())
            groups = (
                [line for _, line in group]
                for _, group in itertools.groupby(
                    snapshot.lines_by_chunk(chunking), key=itemgetter(0)
                )
            )
            chunks = prepared_chunks(groups, request.workers if due >= PARALLEL_FROM_PLANS else 1)
            refs = upload_chunks(files, where, chunks, invalid)
        invalid.flush()
    manifest = RunManifest(
        schema_version=1,
        run_id=run_id,
        market=key.market,
        run_date=key.run_date,
        created_at=clock(),
        item_count=sum(r.items for r in refs),
        chunk_count=len(refs),
        chunks=refs,
        calendars=closures_of_run(key),
    )
    files.put_manifest(where, manifest)
    runs.record_manifested(
        run_id,
        manifest_uri=where.manifest_uri,
        plans_due=manifest.item_count,
        invalid_plans=invalid.count,
        chunks=refs,
    )
    log.info(
        "manifests written: %d plan(s) in %d chunk(s), %d invalid plan(s) skipped",
        manifest.item_count,
        manifest.chunk_count,
        invalid.count,
        extra={"manifest_uri": where.manifest_uri},
    )
    return manifest, timeout


def upload_chunks(
    files: RunFiles,
    where: RunLocation,
    chunks: Iterable[PreparedChunk],
    invalid: InvalidPlanSink,
) -> list[ChunkRef]:
    """Upload the non-empty chunks as 0, 1, ... in a bounded thread pool; record invalid plans."""
    refs: list[ChunkRef] = []
    in_flight: deque[Future[ChunkRef]] = deque()
    index = 0
    with ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="manifest") as pool:
        for chunk in chunks:
            for plan in chunk.invalid:
                invalid.add(plan.plan_id, plan.scheduled_date, plan.reason)
            if not chunk.items:
                continue
            in_flight.append(
                pool.submit(files.put_chunk, where, index, chunk.data, chunk.items, chunk.symbols)
            )
            index += 1
            if len(in_flight) >= MAX_IN_FLIGHT:
                refs.append(in_flight.popleft().result())
            failpoint("planner.mid_manifest")
        refs.extend(f.result() for f in in_flight)
    return refs
