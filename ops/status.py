"""`worthy-batch status`: a run and a table of its chunks, for people or (--json) scripts."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import IO, Any

from common.adapters.store.runs import ChunkRecord, RunRecord, RunRepository
from common.domain.errors import ConfigError
from common.domain.run_key import RunKey
from common.domain.statuses import ChunkStatus
from ops.root import OpsRoot


def render(run: RunRecord, chunks: list[ChunkRecord], out: IO[str]) -> None:
    out.write(f"run {run.run_id}  {run.status}  market {run.market}  date {run.run_date}\n")
    due = run.plans_due if run.plans_due is not None else "-"
    out.write(
        f"  plans due {due}, invalid {run.invalid_plans or 0}, "
        f"chunks {run.chunk_count or 0}, redrives {run.redrives}\n"
    )
    if run.detail:
        out.write(f"  detail: {run.detail}\n")
    if run.executor_job_id:
        finalizer = run.finalizer_job_id or "-"
        out.write(f"  executor job {run.executor_job_id}, finalizer job {finalizer}\n")
    if run.manifest_uri:
        out.write(f"  manifest {run.manifest_uri}\n")
    if not chunks:
        return
    by_status: dict[str, int] = {}
    for chunk in chunks:
        by_status[chunk.status] = by_status.get(chunk.status, 0) + 1
    out.write("  chunks: " + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) + "\n")
    out.write(
        f"  {'chunk':>5} {'status':<9} {'tries':>5} {'plans':>6} {'bought':>6} "
        f"{'skipped':>7} {'failed':>6} {'seconds':>7}\n"
    )
    for c in chunks:
        seconds = (
            f"{(c.finished_at - c.started_at).total_seconds():7.1f}"
            if c.started_at and c.finished_at
            else f"{'-':>7}"
        )
        out.write(
            f"  {c.chunk_index:>5} {c.status:<9} {c.attempts:>5} {c.items:>6} "
            f"{c.purchased:>6} {c.skipped:>7} {c.failed:>6} {seconds}\n"
        )
    for c in chunks:
        if c.last_error and c.status != ChunkStatus.SUCCEEDED:
            tries = f"{c.attempts} attempt{'s' if c.attempts != 1 else ''}"
            out.write(f"  chunk {c.chunk_index} {c.status} after {tries}: {c.last_error}\n")


def as_json(run: RunRecord, chunks: list[ChunkRecord]) -> dict[str, Any]:
    return {"run": asdict(run), "chunks": [asdict(c) for c in chunks]}


def run(args: argparse.Namespace, root: OpsRoot) -> int:
    conn = root.connect()
    try:
        runs = RunRepository(conn)
        if args.run_id:
            record: RunRecord | None = runs.require(args.run_id)
        elif args.run_date:
            record = runs.require(RunKey(args.market, args.run_date).run_id)
        else:
            record = runs.latest(args.market)
        if record is None:
            raise ConfigError({"--market": f"no run of {args.market} in this database yet"})
        chunks = runs.chunks(record.run_id)
    finally:
        conn.close()
    if args.json:
        json.dump(as_json(record, chunks), sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        render(record, chunks, sys.stdout)
    return 0
