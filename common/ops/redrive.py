"""`worthy-batch redrive`: rerun only the chunks of a run that did not succeed, then finalize.

Safe whatever state the chunks are in: a chunk still running, or one that
half-finished, is simply run again, and nothing is bought twice.
"""

from __future__ import annotations

import argparse

from common import aws
from common.config import load_settings
from common.db import connect, database_errors_are_transient, database_url
from common.errors import InputError
from common.logging import get_logger, log_context
from common.manifest_store import ManifestStore
from common.ops.finalize import finalize_run
from common.runs import FINISHED, MANIFESTED, MARKET_CLOSED, PLANNING, SUBMITTING, RunRepository
from common.submitters import JobSubmitter, RunToSubmit
from planner.entrypoint import build_submitter, default_submitter, required_settings

log = get_logger(__name__)


def redrive_run(
    runs: RunRepository, submitter: JobSubmitter, run_id: str, store: ManifestStore
) -> str:
    run = runs.get(run_id)
    if run is None:
        raise InputError(f"no run {run_id} in this database")
    if run.status == MARKET_CLOSED:
        return f"run {run_id} was a closed market day; nothing to redrive"
    if run.status in (PLANNING, MANIFESTED, SUBMITTING) or not run.manifest_uri:
        raise InputError(
            f"run {run_id} was never fully submitted ({run.status}); run "
            f"`worthy-batch plan --market {run.market} --run-date {run.run_date}` to resume it"
        )
    todo = [c.chunk_index for c in runs.chunks(run_id) if c.status != "succeeded"]
    if not todo:
        if run.status in FINISHED:
            return f"every chunk of {run_id} already succeeded; nothing to redrive"
        # Every chunk finished but the finalizer never ran (Batch cancelled it, or it
        # was killed): close the run now rather than leave it `submitted`.
        closed = finalize_run(runs, store, run_id)
        return f"every chunk of {run_id} had succeeded; finalized it: {closed.status}"
    runs.count_redrive(run_id)
    log.info("redriving %d chunk(s)", len(todo), extra={"chunks": todo[:100]})
    done = submitter.redrive(
        RunToSubmit(run_id, run.manifest_uri, run.chunk_count or 0), todo, run.redrives + 1
    )
    return f"redrive {run.redrives + 1} of {run_id}: {done}"


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    kind = args.submitter or default_submitter(settings)
    needed = [n for n in required_settings(kind, dry_run=False) if n != "manifest_bucket"]
    settings = load_settings(required=needed)
    with log_context(run_id=args.run_id), database_errors_are_transient():
        dsn = database_url(settings)
        conn = connect(dsn, attempts=settings.db_connect_attempts)
        try:
            message = redrive_run(
                RunRepository(conn),
                build_submitter(kind, settings, dsn),
                args.run_id,
                ManifestStore(aws.s3_client()),
            )
        finally:
            conn.close()
    log.info("%s", message)
    return 0
