"""`worthy-batch watchdog`: did today's run end? Exit 1 (the failed-job alarm) when not.

A second schedule submits it after the day's run should have ended. It exits 0
on a closed day and when the day's run is final (succeeded, partial or failed:
a partial or failed run already raised the finalizer's `run_incomplete` alarm),
and 1 with one line saying what is wrong and what to do when a market day's run
is missing or still short of final. Not 78: nothing is wrong with the watchdog's
own configuration, the day is.

`judge` decides from what the database holds (pure); `run` gathers it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from zoneinfo import ZoneInfo

from psycopg2.extensions import connection

from common.adapters.store.runs import ChunkRecord, RunRecord, RunRepository
from common.domain.calendar import market_timezone, resolve_run_day
from common.domain.errors import ExitCode
from common.domain.run_key import RunKey
from common.domain.statuses import FINISHED_RUN, ChunkStatus, RunStatus
from ops.root import OpsRoot

PROG = "worthy-batch watchdog"


@dataclass(frozen=True)
class Verdict:
    ok: bool  # exit 0; else exit 1 (ExitCode.FAILED)
    line: str  # what the day's run is, and what to do when it is not ok


def judge(
    key: RunKey,
    closed: str | None,
    run: RunRecord | None,
    chunks: Sequence[ChunkRecord],
    timezone: ZoneInfo,
) -> Verdict:
    """The day's verdict from its closure (None: the market trades), its run and chunks."""
    market, run_date, run_id = key.market, key.run_date, key.run_id
    status_cmd = f"worthy-batch status --run-id {run_id}"
    if closed:
        return Verdict(True, f"{market} is closed on {run_date} ({closed}); no run is due")
    if run is None:
        return Verdict(
            False,
            f"no run {run_id}: {market} trades on {run_date} and the planner never claimed "
            "the day; check the schedule (and its dead-letter queue) and the planner job's "
            f"log, then plan it: worthy-batch submit --run-date {run_date} --market {market}",
        )
    if run.status in FINISHED_RUN:
        at = _local(run.finished_at or run.updated_at, timezone)
        if run.status == RunStatus.SUCCEEDED:
            return Verdict(True, f"{run_id} succeeded at {at}")
        return Verdict(
            True,
            f"{run_id} is final ({run.status}) since {at}; the finalizer's run_incomplete "
            f"alarm covers it: see {status_cmd}, then worthy-batch redrive --run-id {run_id}",
        )
    since = _local(run.created_at, timezone)
    if run.status == RunStatus.MARKET_CLOSED:
        return Verdict(
            False,
            f"{run_id} is recorded as market closed ({run.detail}), but {market} trades on "
            f"{run_date} by this release's calendar; plan it again: "
            f"worthy-batch submit --run-date {run_date} --market {market}",
        )
    if run.status != RunStatus.SUBMITTED:
        return Verdict(
            False,
            f"{run_id} is {run.status} since {since}: the planner stopped before it submitted "
            f"every job; plan it again (it resumes without buying twice): "
            f"worthy-batch submit --run-date {run_date} --market {market}",
        )
    done = sum(c.status == ChunkStatus.SUCCEEDED for c in chunks)
    failed = sum(c.status == ChunkStatus.FAILED for c in chunks)
    tally = f"{done} of {len(chunks)} chunks succeeded" + (f", {failed} failed" if failed else "")
    return Verdict(
        False,
        f"{run_id} is running since {since} ({tally}) and has no report yet: see {status_cmd}; "
        f"when none of its jobs is still running, worthy-batch redrive --run-id {run_id}",
    )


def _local(instant: datetime, timezone: ZoneInfo) -> str:
    return instant.astimezone(timezone).strftime("%H:%M %Z")


def watch(
    connector: Callable[[], connection],
    market: str,
    run_date: date | None,
    clock: Callable[[], datetime],
) -> Verdict:
    """Resolve the day as the planner does (default: today in the market's time zone),
    read its run, judge it."""
    day = resolve_run_day(market, run_date, clock())
    timezone = market_timezone(market)
    if day.closed:
        return judge(day.key, day.closed, None, (), timezone)
    conn = connector()
    try:
        runs = RunRepository(conn)
        record = runs.get(day.key.run_id)
        chunks = runs.chunks(record.run_id) if record is not None else []
    finally:
        conn.close()
    return judge(day.key, None, record, chunks, timezone)


def run(args: argparse.Namespace, root: OpsRoot) -> int:
    verdict = watch(
        root.connector("worthy-watchdog"), args.market, args.run_date, partial(datetime.now, UTC)
    )
    if verdict.ok:
        sys.stdout.write(f"{verdict.line}\n")
        return int(ExitCode.OK)
    sys.stderr.write(f"{PROG}: {verdict.line}\n")
    return int(ExitCode.FAILED)
