"""`worthy-batch redrive`: rerun only the chunks of a run that did not succeed, then finalize.

One redrive is one job: the chunks to rerun are written to S3 beside the run
(`redrives/<n>.json`) and submitted as one array job (a plain job for one
chunk) whose children map AWS_BATCH_JOB_ARRAY_INDEX through that list, plus
one finalizer that depends on it alone (Batch allows 20 dependencies; one is
always enough). The run's redrive counter moves only once Batch accepted
both. The jobs are submitted with the release the planner recorded (job
definition revisions and the executor's attempt timeout), so a redrive after
a deploy runs the release that planned the run, not the latest. Safe
whatever state the chunks are in: a chunk still running, or one that
half-finished, is simply run again, and nothing is bought twice.
"""

from __future__ import annotations

import argparse

from common.adapters.ports import RunFiles, RunStore
from common.adapters.store.runs import RunRepository
from common.adapters.submitters import JobSubmitter, Release, RunToSubmit
from common.adapters.submitters.factory import default_kind, required_settings
from common.domain.errors import InputError
from common.domain.models import RedriveList
from common.domain.run_key import RunLocation
from common.domain.statuses import FINISHED_RUN, ChunkStatus, RunStatus
from common.platform.logging import get_logger, log_context
from finalizer.service import finalize_run
from ops.root import OpsRoot

log = get_logger(__name__)


def redrive_run(runs: RunStore, submitter: JobSubmitter, run_id: str, store: RunFiles) -> str:
    """Submit again the chunks of `run_id` that did not succeed (one job, then its
    finalizer); finalize a run whose chunks all succeeded but never closed. Returns what
    it did, in one line."""
    run = runs.require(run_id)
    if run.status == RunStatus.MARKET_CLOSED:
        return f"run {run_id} was a closed market day; nothing to redrive"
    if (
        run.status in (RunStatus.PLANNING, RunStatus.MANIFESTED, RunStatus.SUBMITTING)
        or not run.manifest_uri
    ):
        raise InputError(
            f"run {run_id} was never fully submitted ({run.status}); run "
            f"`worthy-batch plan --market {run.market} --run-date {run.run_date}` to resume it"
        )
    todo = [c.chunk_index for c in runs.chunks(run_id) if c.status != ChunkStatus.SUCCEEDED]
    if not todo:
        if run.status in FINISHED_RUN:
            return f"every chunk of {run_id} already succeeded; nothing to redrive"
        # Every chunk finished but the finalizer never ran (Batch cancelled it, or it
        # was killed): close the run now rather than leave it `submitted`.
        closed = finalize_run(runs, store, run_id)
        return f"every chunk of {run_id} had succeeded; finalized it: {closed.status}"
    number = run.redrives + 1
    where = RunLocation.from_manifest_uri(run.manifest_uri)
    # Written once: a job of an earlier try at this same redrive may still read it.
    listed = store.load_redrive(where, number)
    if listed is None:
        listed = RedriveList(run_id=run_id, redrive=number, chunks=todo)
        store.put_redrive(where, listed)
    log.info(
        "redrive %d: %d chunk(s)", number, len(listed.chunks), extra={"chunks": listed.chunks[:100]}
    )

    def accepted(*, executor: str | None = None, finalizer: str | None = None) -> None:
        runs.record_job(run_id, executor=executor, finalizer=finalizer)
        if finalizer is not None:  # the last of the redrive's jobs: Batch took it all
            runs.count_redrive(run_id)

    release = runs.release_of(run_id) or Release()  # none recorded: the submitter's own
    done = submitter.redrive(
        RunToSubmit(run_id, run.manifest_uri, run.chunk_count or 0, release=release),
        listed.chunks,
        number,
        accepted,
    )
    return f"redrive {number} of {run_id}: {done}"


def run(args: argparse.Namespace, root: OpsRoot) -> int:
    kind = args.submitter or default_kind(root.settings())
    root.settings(required=required_settings(kind))
    with log_context(run_id=args.run_id):
        conn = root.connect()
        try:
            message = redrive_run(
                RunRepository(conn),
                root.submitter(kind),
                args.run_id,
                root.manifest_store(),
            )
        finally:
            conn.close()
    log.info("%s", message)
    return 0
