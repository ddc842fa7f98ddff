"""The run ledger: `batch_runs` and `batch_chunks`.

A run is one (market, run date), id `<MIC>-<YYYYMMDD>`. Its status moves

    planning -> manifested -> submitting -> submitted -> succeeded | partial | failed
    market_closed                                  (a closed day, recorded and done)

and only the planner holding the run's advisory lock moves it before
`submitted`. Manifests may be rewritten while nothing is submitted.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg2.extras
from psycopg2.extensions import connection

from common.adapters.db import array_literal
from common.adapters.submitters.base import Release
from common.domain.errors import InputError, UnknownRun
from common.domain.models import ChunkRef, JobUsage
from common.domain.run_key import RunKey
from common.domain.statuses import FINISHED_RUN, ChunkStatus, Execution, Reason, RunStatus

KNOWN_RUNS_LISTED = 5  # an unknown run id's error names this many of the latest runs
# `detail` of a canary run: the smoke test's probe on a weekend date (planner --canary).
CANARY = "canary"

_RUN_COLUMNS = (
    "run_id, market, run_date, status, plans_due, invalid_plans, chunk_count, manifest_uri, "
    "executor_job_id, finalizer_job_id, redrives, detail, created_at, updated_at, finished_at"
)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    market: str
    run_date: date
    status: str
    plans_due: int | None
    invalid_plans: int | None
    chunk_count: int | None
    manifest_uri: str | None
    executor_job_id: str | None
    finalizer_job_id: str | None
    redrives: int
    detail: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ChunkRecord:
    run_id: str
    chunk_index: int
    items: int
    symbols: int
    status: str
    attempts: int
    purchased: int
    skipped: int
    failed: int
    last_error: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class InvalidRows:
    """What the planner found invalid in a run: counts by reason, and the rows listed."""

    reasons: dict[str, int]
    rows: list[tuple[int, str | None, str]]  # (plan_id, symbol, reason)

    @property
    def count(self) -> int:
        return sum(self.reasons.values())


def run_lock_key(run_id: str) -> int:
    """A stable 63-bit advisory-lock key for a run id."""
    return zlib.crc32(f"worthy-run:{run_id}".encode()) | (0x7701 << 32)


class RunRepository:
    """Reads and moves runs. Every method commits its own change."""

    def __init__(self, conn: connection) -> None:
        self._conn = conn

    def _execute(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        with self._conn, self._conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def get(self, run_id: str) -> RunRecord | None:
        rows = self._execute(f"SELECT {_RUN_COLUMNS} FROM batch_runs WHERE run_id = %s", (run_id,))
        return RunRecord(*rows[0]) if rows else None

    def require(self, run_id: str) -> RunRecord:
        """The run `run_id`; `UnknownRun` (78, naming the latest runs) when there is none."""
        found = self.get(run_id)
        if found is None:
            rows = self._execute(
                "SELECT run_id FROM batch_runs ORDER BY run_date DESC, run_id LIMIT %s",
                (KNOWN_RUNS_LISTED,),
            )
            raise UnknownRun(run_id, [str(r[0]) for r in rows], KNOWN_RUNS_LISTED)
        return found

    def latest(self, market: str | None = None) -> RunRecord | None:
        rows = self._execute(
            f"SELECT {_RUN_COLUMNS} FROM batch_runs WHERE %(m)s::text IS NULL OR market = %(m)s "
            "ORDER BY run_date DESC LIMIT 1",
            {"m": market},
        )
        return RunRecord(*rows[0]) if rows else None

    def lock(self, run_id: str) -> None:
        """Hold the run's advisory lock for the life of this connection's session."""
        self._execute("SELECT pg_advisory_lock(%s)", (run_lock_key(run_id),))

    def unlock(self, run_id: str) -> None:
        self._execute("SELECT pg_advisory_unlock(%s)", (run_lock_key(run_id),))

    def claim(self, key: RunKey) -> RunRecord:
        """The run's record, created in `planning` if it did not exist."""
        run_id = key.run_id
        self._execute(
            "INSERT INTO batch_runs (run_id, market, run_date, status) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (run_id) DO NOTHING",
            (run_id, key.market, key.run_date, RunStatus.PLANNING),
        )
        record = self.get(run_id)
        assert record is not None
        return record

    def delete_canary(self, run_id: str) -> bool:
        """Remove a weekend run that bought and priced nothing (the canary's rows)."""
        rows = self._execute("SELECT delete_canary_run(%s)", (run_id,))
        return bool(rows and rows[0][0])

    def record_market_closed(self, key: RunKey, why: str) -> None:
        self._execute(
            "INSERT INTO batch_runs (run_id, market, run_date, status, detail, plans_due, "
            "chunk_count, finished_at) VALUES (%s, %s, %s, %s, %s, 0, 0, now()) "
            "ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, "
            "detail = excluded.detail, updated_at = now(), finished_at = now()",
            (key.run_id, key.market, key.run_date, RunStatus.MARKET_CLOSED, why),
        )

    def record_manifested(
        self,
        run_id: str,
        *,
        manifest_uri: str,
        plans_due: int,
        invalid_plans: int,
        chunks: Sequence[ChunkRef],
    ) -> None:
        """Replace the run's chunk list and mark it `manifested`, in one transaction."""
        with self._conn, self._conn.cursor() as cur:
            cur.execute("DELETE FROM batch_chunks WHERE run_id = %s", (run_id,))
            psycopg2.extras.execute_values(
                cur,
                "INSERT INTO batch_chunks (run_id, chunk_index, items, symbols) VALUES %s",
                [(run_id, c.index, c.items, c.symbols) for c in chunks],
                page_size=1000,
            )
            cur.execute(
                "UPDATE batch_runs SET status = %s, manifest_uri = %s, plans_due = %s, "
                "invalid_plans = %s, chunk_count = %s, updated_at = now() WHERE run_id = %s",
                (RunStatus.MANIFESTED, manifest_uri, plans_due, invalid_plans, len(chunks), run_id),
            )

    def set_status(self, run_id: str, status: str, *, detail: str | None = None) -> None:
        finished = status in FINISHED_RUN
        self._execute(
            "UPDATE batch_runs SET status = %s, detail = coalesce(%s, detail), updated_at = now(), "
            "finished_at = CASE WHEN %s THEN now() ELSE finished_at END WHERE run_id = %s",
            (status, detail, finished, run_id),
        )

    def advance(self, run_id: str, expected: str, status: str) -> bool:
        """Move the run from `expected` to `status`; False when it was not in `expected`."""
        rows = self._execute(
            "UPDATE batch_runs SET status = %s, updated_at = now() "
            "WHERE run_id = %s AND status = %s RETURNING run_id",
            (status, run_id, expected),
        )
        return bool(rows)

    def record_job(
        self, run_id: str, *, executor: str | None = None, finalizer: str | None = None
    ) -> None:
        self._execute(
            "UPDATE batch_runs SET executor_job_id = coalesce(%s, executor_job_id), "
            "finalizer_job_id = coalesce(%s, finalizer_job_id), updated_at = now() "
            "WHERE run_id = %s",
            (executor, finalizer, run_id),
        )

    def record_planner_usage(self, run_id: str, usage: JobUsage) -> None:
        """The planner's usage until it submitted the run's jobs (the last planner's, when
        one resumed another's run)."""
        self._execute(
            "UPDATE batch_runs SET planner_usage = %s::jsonb WHERE run_id = %s",
            (usage.model_dump_json(), run_id),
        )

    def planner_usage(self, run_id: str) -> JobUsage | None:
        rows = self._execute("SELECT planner_usage FROM batch_runs WHERE run_id = %s", (run_id,))
        if not rows or rows[0][0] is None:
            return None
        return JobUsage.model_validate(rows[0][0])

    def record_release(self, run_id: str, release: Release) -> None:
        """What the run's jobs are submitted with (common/adapters/submitters/base.py `Release`)."""
        self._execute(
            "UPDATE batch_runs SET executor_job_definition = %s, finalizer_job_definition = %s, "
            "executor_timeout_seconds = %s, updated_at = now() WHERE run_id = %s",
            (
                release.executor_definition,
                release.finalizer_definition,
                release.executor_timeout_seconds,
                run_id,
            ),
        )

    def release_of(self, run_id: str) -> Release | None:
        """The release recorded for the run; None when none was (or the run is unknown)."""
        rows = self._execute(
            "SELECT executor_job_definition, finalizer_job_definition, executor_timeout_seconds "
            "FROM batch_runs WHERE run_id = %s",
            (run_id,),
        )
        if not rows or rows[0] == (None, None, None):
            return None
        return Release(*rows[0])

    def forget_refused(self, run_id: str) -> bool:
        """Remove a run claimed by a planner that then refused the day before writing
        anything (no manifest, no chunks): a refused day leaves no row behind."""
        rows = self._execute(
            "DELETE FROM batch_runs r WHERE run_id = %s AND status = %s "
            "AND manifest_uri IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM batch_chunks c WHERE c.run_id = r.run_id) "
            "AND NOT EXISTS (SELECT 1 FROM plan_executions e WHERE e.run_id = r.run_id) "
            "RETURNING run_id",
            (run_id, RunStatus.PLANNING),
        )
        return bool(rows)

    def count_redrive(self, run_id: str) -> None:
        self._execute(
            "UPDATE batch_runs SET redrives = redrives + 1, updated_at = now() WHERE run_id = %s",
            (run_id,),
        )

    def start_chunk(self, run_id: str, index: int) -> int:
        """Mark a chunk `running` and count the attempt; return the attempt number."""
        rows = self._execute(
            f"UPDATE batch_chunks SET status = '{ChunkStatus.RUNNING}', attempts = attempts + 1, "
            "started_at = now(), finished_at = NULL, last_error = NULL "
            "WHERE run_id = %s AND chunk_index = %s RETURNING attempts",
            (run_id, index),
        )
        if not rows:
            raise InputError(
                f"run {run_id} has no chunk {index} in this database; was it planned here?"
            )
        return int(rows[0][0])

    def finish_chunk(
        self,
        run_id: str,
        index: int,
        *,
        succeeded: bool,
        counts: Mapping[str, int],
        error: str | None = None,
    ) -> None:
        self._execute(
            "UPDATE batch_chunks SET status = %s, purchased = %s, skipped = %s, failed = %s, "
            "last_error = %s, finished_at = now() WHERE run_id = %s AND chunk_index = %s",
            (
                ChunkStatus.SUCCEEDED if succeeded else ChunkStatus.FAILED,
                counts.get("purchased", 0),
                counts.get("skipped", 0),
                counts.get("failed", 0),
                error,
                run_id,
                index,
            ),
        )

    def fail_chunk(self, run_id: str, index: int, error: str, *, started: bool) -> None:
        """Record why an attempt at a chunk failed. An attempt that failed before it
        `start_chunk`ed (its chunk would not load) is counted here. A chunk that succeeded
        before keeps its status: its plans are bought, whatever this attempt met."""
        self._execute(
            f"UPDATE batch_chunks SET attempts = attempts + %s, last_error = %s, "
            f"status = CASE WHEN status = '{ChunkStatus.SUCCEEDED}' "
            f"THEN status ELSE '{ChunkStatus.FAILED}' END, "
            "started_at = coalesce(started_at, now()), finished_at = now() "
            "WHERE run_id = %s AND chunk_index = %s",
            (0 if started else 1, error, run_id, index),
        )

    def outcomes(self, plans: Sequence[tuple[int, date]]) -> list[tuple[int, str, str | None]]:
        """(plan_id, status, reason) recorded for each (plan_id, scheduled_date)."""
        return [
            (int(plan_id), status, reason)
            for plan_id, status, reason in self._execute(
                "SELECT e.plan_id, e.status, e.reason FROM plan_executions e "
                "JOIN unnest(%s::bigint[], %s::date[]) AS c(plan_id, scheduled_date) "
                "USING (plan_id, scheduled_date)",
                (array_literal(p for p, _ in plans), array_literal(d for _, d in plans)),
            )
        ]

    def invalid_rows(self, run_id: str, limit: int) -> InvalidRows:
        """The rows the planner of `run_id` found invalid: counts by reason, and the first
        `limit` of them (plan id, symbol as the app's row has it, reason)."""
        recorded = (
            "FROM plan_executions e LEFT JOIN recurring_investments r ON r.id = e.plan_id "
            "WHERE e.run_id = %(run)s AND e.chunk_index IS NULL "
            f"AND e.status = '{Execution.SKIPPED}' AND e.reason LIKE '{Reason.INVALID_PLAN}%%'"
        )
        params = {"run": run_id, "limit": limit}
        counts = self._execute(f"SELECT e.reason, count(*) {recorded} GROUP BY 1", params)
        listed = self._execute(
            f"SELECT e.plan_id, r.symbol, e.reason {recorded} ORDER BY 1 LIMIT %(limit)s", params
        )
        return InvalidRows(
            reasons={reason: int(n) for reason, n in sorted(counts)},
            rows=[(int(p), symbol, reason) for p, symbol, reason in listed],
        )

    def chunks(self, run_id: str) -> list[ChunkRecord]:
        rows = self._execute(
            "SELECT run_id, chunk_index, items, symbols, status, attempts, purchased, skipped, "
            "failed, last_error, started_at, finished_at FROM batch_chunks WHERE run_id = %s "
            "ORDER BY chunk_index",
            (run_id,),
        )
        return [ChunkRecord(*row) for row in rows]
