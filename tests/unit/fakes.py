"""In-memory fakes of the services' ports (common/adapters/ports.py), with real behaviour.

`FakeStores` is the unit of work the planner and the executor are handed: one
`FakeDatabase` of dicts behind every session, so what the planner records the
executor and the finalizer read. The rules it keeps are the store's own, in
a few lines each: a finished chunk's plans are not bought twice (an execution
that is final stays), a chunk that succeeded keeps its status, a refused day
leaves no run behind. `FakeRunFiles` holds a run's files as the S3 store
would; `FakeSubmitter` records the jobs it was asked to start.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from common.adapters.marketdata.quotes import Price
from common.adapters.store.ledger import Batch
from common.adapters.store.quotes import Kind
from common.adapters.store.runs import CANARY, ChunkRecord, InvalidRows, RunRecord
from common.adapters.store.snapshot import Demand, DueQuery
from common.adapters.submitters import JobRecorder, Release, RunToSubmit
from common.domain.chunking import Chunking
from common.domain.errors import InputError, UnknownRun
from common.domain.models import (
    ChunkRef,
    ChunkResult,
    JobUsage,
    PlanSnapshot,
    RedriveList,
    RunManifest,
    snapshot_from_line,
)
from common.domain.run_key import RunKey, RunLocation
from common.domain.statuses import FINISHED_RUN, ChunkStatus, Decision, Execution, Reason, RunStatus

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
Key = tuple[int, date]  # (plan_id, scheduled_date)


@dataclass
class Execution_:
    status: str
    reason: str | None
    run_id: str
    chunk_index: int | None

    @property
    def final(self) -> bool:
        return self.status == Execution.PURCHASED or (
            self.status == Execution.SKIPPED and self.reason == Reason.AMOUNT_BELOW_MINIMUM
        )


@dataclass
class Purchase:
    plan_id: int
    scheduled_date: date
    run_id: str
    quantity: Decimal | None
    price: Decimal | None


@dataclass
class FakeDatabase:
    """The tables the services touch, as dicts."""

    runs: dict[str, RunRecord] = field(default_factory=dict)
    chunks: dict[tuple[str, int], ChunkRecord] = field(default_factory=dict)
    releases: dict[str, Release] = field(default_factory=dict)
    planner_usage: dict[str, JobUsage] = field(default_factory=dict)
    executions: dict[Key, Execution_] = field(default_factory=dict)
    purchases: list[Purchase] = field(default_factory=list)
    quotes: dict[tuple[str, Kind, str], Price] = field(default_factory=dict)
    due: list[PlanSnapshot] = field(default_factory=list)  # the snapshot's rows
    changed: set[int] = field(default_factory=set)  # plans edited since the snapshot
    locked: set[str] = field(default_factory=set)


class FakeRunStore:
    """RunRepository's rules over a FakeDatabase."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    def get(self, run_id: str) -> RunRecord | None:
        return self.db.runs.get(run_id)

    def require(self, run_id: str) -> RunRecord:
        found = self.get(run_id)
        if found is None:
            raise UnknownRun(run_id, sorted(self.db.runs), 5)
        return found

    def _update(self, run_id: str, **changes: Any) -> None:
        self.db.runs[run_id] = replace(self.db.runs[run_id], **changes)

    def lock(self, run_id: str) -> None:
        assert run_id not in self.db.locked, "the run's lock is held already"
        self.db.locked.add(run_id)

    def unlock(self, run_id: str) -> None:
        self.db.locked.discard(run_id)

    def claim(self, key: RunKey) -> RunRecord:
        run_id = key.run_id
        if run_id not in self.db.runs:
            self.db.runs[run_id] = RunRecord(
                run_id, key.market, key.run_date, RunStatus.PLANNING, None, None, None, None,
                None, None, 0, None, EPOCH, EPOCH, None,
            )  # fmt: skip
        return self.db.runs[run_id]

    def delete_canary(self, run_id: str) -> bool:
        run = self.db.runs.get(run_id)
        if run is None or run.detail != CANARY:
            return False
        del self.db.runs[run_id]
        for key in [k for k in self.db.chunks if k[0] == run_id]:
            del self.db.chunks[key]
        return True

    def record_market_closed(self, key: RunKey, why: str) -> None:
        self.claim(key)
        self._update(
            key.run_id, status=RunStatus.MARKET_CLOSED, detail=why, plans_due=0, chunk_count=0
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
        for key in [k for k in self.db.chunks if k[0] == run_id]:
            del self.db.chunks[key]
        for c in chunks:
            self.db.chunks[(run_id, c.index)] = ChunkRecord(
                run_id, c.index, c.items, c.symbols, ChunkStatus.PENDING, 0, 0, 0, 0,
                None, None, None,
            )  # fmt: skip
        self._update(
            run_id,
            status=RunStatus.MANIFESTED,
            manifest_uri=manifest_uri,
            plans_due=plans_due,
            invalid_plans=invalid_plans,
            chunk_count=len(chunks),
        )

    def set_status(self, run_id: str, status: str, *, detail: str | None = None) -> None:
        run = self.db.runs[run_id]
        self._update(
            run_id,
            status=status,
            detail=detail if detail is not None else run.detail,
            finished_at=EPOCH if status in FINISHED_RUN else run.finished_at,
        )

    def advance(self, run_id: str, expected: str, status: str) -> bool:
        if self.db.runs[run_id].status != expected:
            return False
        self._update(run_id, status=status)
        return True

    def record_job(
        self, run_id: str, *, executor: str | None = None, finalizer: str | None = None
    ) -> None:
        run = self.db.runs[run_id]
        self._update(
            run_id,
            executor_job_id=executor or run.executor_job_id,
            finalizer_job_id=finalizer or run.finalizer_job_id,
        )

    def record_planner_usage(self, run_id: str, usage: JobUsage) -> None:
        self.db.planner_usage[run_id] = usage

    def planner_usage(self, run_id: str) -> JobUsage | None:
        return self.db.planner_usage.get(run_id)

    def record_release(self, run_id: str, release: Release) -> None:
        self.db.releases[run_id] = release

    def release_of(self, run_id: str) -> Release | None:
        return self.db.releases.get(run_id)

    def forget_refused(self, run_id: str) -> bool:
        run = self.db.runs.get(run_id)
        if run is None or run.status != RunStatus.PLANNING or run.manifest_uri:
            return False
        del self.db.runs[run_id]
        return True

    def count_redrive(self, run_id: str) -> None:
        self._update(run_id, redrives=self.db.runs[run_id].redrives + 1)

    def _chunk(self, run_id: str, index: int, **changes: Any) -> None:
        key = (run_id, index)
        self.db.chunks[key] = replace(self.db.chunks[key], **changes)

    def start_chunk(self, run_id: str, index: int) -> int:
        found = self.db.chunks.get((run_id, index))
        if found is None:
            raise InputError(f"run {run_id} has no chunk {index} in this database")
        attempt = found.attempts + 1
        self._chunk(run_id, index, status=ChunkStatus.RUNNING, attempts=attempt, last_error=None)
        return attempt

    def finish_chunk(
        self,
        run_id: str,
        index: int,
        *,
        succeeded: bool,
        counts: Mapping[str, int],
        error: str | None = None,
    ) -> None:
        self._chunk(
            run_id,
            index,
            status=ChunkStatus.SUCCEEDED if succeeded else ChunkStatus.FAILED,
            purchased=counts.get("purchased", 0),
            skipped=counts.get("skipped", 0),
            failed=counts.get("failed", 0),
            last_error=error,
        )

    def fail_chunk(self, run_id: str, index: int, error: str, *, started: bool) -> None:
        chunk = self.db.chunks[(run_id, index)]
        succeeded = chunk.status == ChunkStatus.SUCCEEDED
        self._chunk(
            run_id,
            index,
            attempts=chunk.attempts + (0 if started else 1),
            last_error=error,
            status=chunk.status if succeeded else ChunkStatus.FAILED,
        )

    def outcomes(self, plans: Sequence[tuple[int, date]]) -> list[tuple[int, str, str | None]]:
        found = (self.db.executions.get(key) for key in plans)
        return [(key[0], e.status, e.reason) for key, e in zip(plans, found, strict=True) if e]

    def invalid_rows(self, run_id: str, limit: int) -> InvalidRows:
        rows: list[tuple[int, str | None, str]] = sorted(
            (plan_id, None, e.reason or "")
            for (plan_id, _), e in self.db.executions.items()
            if e.run_id == run_id
            and e.chunk_index is None
            and (e.reason or "").startswith(Reason.INVALID_PLAN)
        )
        return InvalidRows(dict(Counter(r for _, _, r in rows)), rows[:limit])

    def chunks(self, run_id: str) -> list[ChunkRecord]:
        return [c for (run, _), c in sorted(self.db.chunks.items()) if run == run_id]


class FakeSnapshot:
    """The due plans of FakeDatabase.due, as the snapshot streams them."""

    def __init__(self, db: FakeDatabase, query: DueQuery) -> None:
        self._db = db
        self._query = query

    def demand(self) -> Demand:
        due = self._db.due
        bases = frozenset(p.currency for p in due if p.currency != p.asset_currency)
        return Demand(dict(Counter(p.symbol for p in due)), bases)

    def already_priced(self, run_id: str, symbols: list[str]) -> tuple[int, frozenset[str]]:
        keys = {(k, key) for (run, k, key) in self._db.quotes if run == run_id}
        priced = sum((Kind.PRICE, s) in keys for s in symbols)
        return priced, frozenset(key.split(":")[0] for kind, key in keys if kind == Kind.FX)

    def lines_by_chunk(self, chunking: Chunking) -> Iterator[tuple[int, str]]:
        by_symbol: dict[str, list[PlanSnapshot]] = {}
        for p in sorted(self._db.due, key=lambda p: p.plan_id):
            by_symbol.setdefault(p.symbol, []).append(p)
        for chunk in chunking.chunks:
            for piece in chunk.slices:
                for p in by_symbol[piece.symbol][piece.start : piece.stop]:
                    yield chunk.index, p.model_dump_json()


class FakeInvalidPlans:
    def __init__(self, db: FakeDatabase, run_id: str) -> None:
        self._db = db
        self._run_id = run_id
        self._pending: list[tuple[int, date, str]] = []
        self.count = 0

    def add(self, plan_id: int, scheduled_date: date | None, reason: str) -> None:
        if scheduled_date is not None:
            self._pending.append((plan_id, scheduled_date, reason))
            self.count += 1

    def flush(self) -> None:
        for plan_id, day, reason in self._pending:
            found = self._db.executions.get((plan_id, day))
            if found is None or not found.final:
                self._db.executions[(plan_id, day)] = Execution_(
                    Execution.SKIPPED, reason, self._run_id, None
                )
        self._pending.clear()


class FakeQuoteTransaction:
    def __init__(self, quotes: FakeQuotes) -> None:
        self._quotes = quotes

    def try_lock(self, kind: Kind, keys: list[str]) -> list[str]:
        return list(keys)  # one process: no other child holds a key

    def lock(self, kind: Kind, key: str) -> None:
        return

    def load(self, kind: Kind, keys: list[str]) -> dict[str, Price]:
        return self._quotes.load(kind, keys)

    def base_fetched(self, base: str) -> bool:
        return any(
            run == self._quotes.run_id and kind == Kind.FX and key.startswith(f"{base}:")
            for run, kind, key in self._quotes.db.quotes
        )

    def store(self, kind: Kind, items: list[tuple[str, Price]]) -> None:
        for key, price in items:
            self._quotes.db.quotes.setdefault((self._quotes.run_id, kind, key), price)


class FakeQuotes:
    def __init__(self, db: FakeDatabase, run_id: str) -> None:
        self.db = db
        self.run_id = run_id

    def load(self, kind: Kind, keys: list[str]) -> dict[str, Price]:
        stored = ((k, self.db.quotes.get((self.run_id, kind, k))) for k in keys)
        return {k: price for k, price in stored if price is not None}

    @contextmanager
    def transaction(self) -> Iterator[FakeQuoteTransaction]:
        yield FakeQuoteTransaction(self)


class FakeLedger:
    """The ledger's rule: a plan's purchase is recorded once per scheduled date; a plan
    edited since the snapshot is skipped `plan_changed`; a final outcome stays."""

    def __init__(self, db: FakeDatabase, run_id: str, index: int) -> None:
        self._db = db
        self._run_id = run_id
        self._index = index

    def apply(self, batch: Batch) -> Counter[str]:
        recorded: Counter[str] = Counter()
        for o in batch.outcomes:
            key = (o.plan_id, o.scheduled_date)
            found = self._db.executions.get(key)
            if found is not None and found.final:
                continue
            status, reason = self._decided(o.plan_id, o.outcome, o.reason)
            if status == Execution.PURCHASED:
                self._db.purchases.append(
                    Purchase(o.plan_id, o.scheduled_date, self._run_id, o.quantity, o.price)
                )
            self._db.executions[key] = Execution_(status, reason, self._run_id, self._index)
            recorded[status] += 1
        return recorded

    def _decided(self, plan_id: int, outcome: str, reason: str | None) -> tuple[str, str | None]:
        if outcome == Decision.FAIL:
            return Execution.FAILED, reason
        if outcome == Decision.INVALID:
            return Execution.SKIPPED, reason
        if plan_id in self._db.changed:
            return Execution.SKIPPED, Reason.PLAN_CHANGED
        if outcome == Decision.PURCHASE:
            return Execution.PURCHASED, None
        return Execution.SKIPPED, Reason.AMOUNT_BELOW_MINIMUM


@dataclass
class FakeWriters:
    ledgers: list[FakeLedger]

    def round_trips(self) -> int:
        return 0


class FakeChunk:
    def __init__(self, db: FakeDatabase, run_id: str, index: int) -> None:
        self._db = db
        self._key = (run_id, index)
        self.runs = FakeRunStore(db)
        self.quotes = FakeQuotes(db, run_id)

    @contextmanager
    def writers(self, count: int) -> Iterator[FakeWriters]:
        yield FakeWriters([FakeLedger(self._db, *self._key) for _ in range(max(count, 1))])


class FakeStores:
    """The unit of work of every stage, on one FakeDatabase."""

    def __init__(self, db: FakeDatabase | None = None) -> None:
        self.db = db or FakeDatabase()
        self.sessions = 0  # sessions opened: each is a connection in production

    @contextmanager
    def runs(self) -> Iterator[FakeRunStore]:
        self.sessions += 1
        yield FakeRunStore(self.db)

    @contextmanager
    def snapshot(self, query: DueQuery) -> Iterator[FakeSnapshot]:
        yield FakeSnapshot(self.db, query)

    @contextmanager
    def invalid_plans(self, run_id: str) -> Iterator[FakeInvalidPlans]:
        yield FakeInvalidPlans(self.db, run_id)

    @contextmanager
    def chunk(self, run_id: str, index: int, trade_date: date) -> Iterator[FakeChunk]:
        self.sessions += 1
        yield FakeChunk(self.db, run_id, index)


class FakeRunFiles:
    """A run's files in a dict keyed like the bucket: s3 key -> the object."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}

    def put_chunk(
        self, where: RunLocation, index: int, data: bytes, items: int, symbols: int
    ) -> ChunkRef:
        key = where.chunk_key(index)
        self.objects[key] = data
        digest = hashlib.sha256(data).hexdigest()
        return ChunkRef(index=index, key=key, items=items, symbols=symbols, sha256=digest)

    def put_manifest(self, where: RunLocation, manifest: RunManifest) -> None:
        self.objects[where.manifest_uri] = manifest

    def put_result(self, where: RunLocation, result: ChunkResult) -> None:
        self.objects[where.result_key(result.chunk_index)] = result

    def put_report(self, where: RunLocation, report: dict[str, Any]) -> None:
        self.objects[where.report_key] = report

    def put_redrive(self, where: RunLocation, chunks: RedriveList) -> None:
        self.objects[where.redrive_key(chunks.redrive)] = chunks

    def load_manifest(self, where: RunLocation) -> RunManifest:
        found: RunManifest = self.objects[where.manifest_uri]
        return found

    def load_chunk(
        self, where: RunLocation, manifest: RunManifest, index: int
    ) -> list[PlanSnapshot]:
        lines = gzip.decompress(self.objects[where.chunk_key(index)]).splitlines()
        plans = [snapshot_from_line(line) for line in lines]
        return [p for p in plans if isinstance(p, PlanSnapshot)]

    def load_redrive(self, where: RunLocation, redrive: int) -> RedriveList | None:
        found: RedriveList | None = self.objects.get(where.redrive_key(redrive))
        return found

    def load_results(self, where: RunLocation, chunk_count: int) -> dict[int, ChunkResult]:
        keys = ((i, where.result_key(i)) for i in range(chunk_count))
        return {i: self.objects[key] for i, key in keys if key in self.objects}

    def report(self, where: RunLocation) -> dict[str, Any]:
        found: dict[str, Any] = self.objects[where.report_key]
        return found


@dataclass
class FakeSubmitter:
    """A JobSubmitter that starts nothing and remembers what it was asked to start."""

    name: str = "fake"
    submitted: list[RunToSubmit] = field(default_factory=list)
    redriven: list[tuple[RunToSubmit, list[int], int]] = field(default_factory=list)

    def pin(self, release: Release, *, strict: bool = False) -> Release:
        return replace(release, executor_definition="executor:7", finalizer_definition="final:7")

    def submit(self, run: RunToSubmit, record: JobRecorder) -> str:
        self.submitted.append(run)
        record(executor=f"job-{len(self.submitted)}-executor")
        record(finalizer=f"job-{len(self.submitted)}-finalizer")
        return f"submitted {run.chunk_count} chunk(s)"

    def redrive(
        self, run: RunToSubmit, chunks: Sequence[int], attempt: int, record: JobRecorder
    ) -> str:
        self.redriven.append((run, list(chunks), attempt))
        record(executor=f"redrive-{attempt}-executor")
        record(finalizer=f"redrive-{attempt}-finalizer")
        return f"resubmitted {len(chunks)} chunk(s)"
