"""What the stages' services need from the outside, as Protocols (ports).

A service is handed these; it never builds them. The PostgreSQL adapters
(common/adapters/store/) and the S3 manifest store satisfy them structurally,
and `PostgresStores` (common/adapters/store/unit_of_work.py) opens them from a
connection factory; the unit tests hand the services in-memory fakes
(tests/unit/fakes.py) instead, like cosmicpython's FakeUnitOfWork.

RunStore        batch_runs and batch_chunks (RunRepository)
RunFiles        a run's files: manifests, chunks, results, redrive lists, report
DueSnapshot     the due plans, read once per run (the planner's snapshot)
InvalidPlanSink plans the planner found invalid, recorded skipped
QuoteStore      run_quotes: each symbol and FX base fetched once per run
LedgerWriter    a batch of decided outcomes, applied exactly once
PlannerStores   the planner's unit of work: a run session, the snapshot, the sink
ExecutorStores  the executor's: one chunk's session (its row, quotes, writers)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from common.adapters.marketdata.quotes import Price
from common.adapters.store.ledger import Batch
from common.adapters.store.quotes import Kind
from common.adapters.store.runs import ChunkRecord, InvalidRows, RunRecord
from common.domain.models import (
    ChunkRef,
    ChunkResult,
    JobUsage,
    PlanSnapshot,
    RedriveList,
    RunManifest,
)
from common.domain.run_key import RunKey, RunLocation

if TYPE_CHECKING:  # the planner's types (an executor child skips them), and Release
    from common.adapters.store.snapshot import Demand, DueQuery
    from common.adapters.submitters import Release
    from common.domain.chunking import Chunking


class RunStore(Protocol):
    """Reads and moves runs and their chunks; every method commits its own change."""

    def get(self, run_id: str) -> RunRecord | None: ...
    def require(self, run_id: str) -> RunRecord: ...
    def lock(self, run_id: str) -> None: ...
    def unlock(self, run_id: str) -> None: ...
    def claim(self, key: RunKey) -> RunRecord: ...
    def delete_canary(self, run_id: str) -> bool: ...
    def record_market_closed(self, key: RunKey, why: str) -> None: ...
    def record_manifested(
        self,
        run_id: str,
        *,
        manifest_uri: str,
        plans_due: int,
        invalid_plans: int,
        chunks: Sequence[ChunkRef],
    ) -> None: ...
    def set_status(self, run_id: str, status: str, *, detail: str | None = None) -> None: ...
    def advance(self, run_id: str, expected: str, status: str) -> bool: ...
    def record_job(
        self, run_id: str, *, executor: str | None = None, finalizer: str | None = None
    ) -> None: ...
    def record_planner_usage(self, run_id: str, usage: JobUsage) -> None: ...
    def planner_usage(self, run_id: str) -> JobUsage | None: ...
    def record_release(self, run_id: str, release: Release) -> None: ...
    def release_of(self, run_id: str) -> Release | None: ...
    def forget_refused(self, run_id: str) -> bool: ...
    def count_redrive(self, run_id: str) -> None: ...
    def start_chunk(self, run_id: str, index: int) -> int: ...
    def finish_chunk(
        self,
        run_id: str,
        index: int,
        *,
        succeeded: bool,
        counts: Mapping[str, int],
        error: str | None = None,
    ) -> None: ...
    def fail_chunk(self, run_id: str, index: int, error: str, *, started: bool) -> None: ...
    def outcomes(self, plans: Sequence[tuple[int, date]]) -> list[tuple[int, str, str | None]]: ...
    def invalid_rows(self, run_id: str, limit: int) -> InvalidRows: ...
    def chunks(self, run_id: str) -> list[ChunkRecord]: ...


class RunFiles(Protocol):
    """A run's files (S3 in production: common/adapters/manifest_store.py)."""

    def put_chunk(
        self, where: RunLocation, index: int, data: bytes, items: int, symbols: int
    ) -> ChunkRef: ...
    def put_manifest(self, where: RunLocation, manifest: RunManifest) -> None: ...
    def put_result(self, where: RunLocation, result: ChunkResult) -> None: ...
    def put_report(self, where: RunLocation, report: dict[str, Any]) -> None: ...
    def put_redrive(self, where: RunLocation, chunks: RedriveList) -> None: ...
    def load_manifest(self, where: RunLocation) -> RunManifest: ...
    def load_chunk(
        self, where: RunLocation, manifest: RunManifest, index: int
    ) -> list[PlanSnapshot]: ...
    def load_redrive(self, where: RunLocation, redrive: int) -> RedriveList | None: ...
    def load_results(self, where: RunLocation, chunk_count: int) -> dict[int, ChunkResult]: ...


class DueSnapshot(Protocol):
    """One consistent read of the plans due on a run's date."""

    def demand(self) -> Demand: ...
    def already_priced(self, run_id: str, symbols: list[str]) -> tuple[int, frozenset[str]]: ...
    def lines_by_chunk(self, chunking: Chunking) -> Iterator[tuple[int, str]]:
        """(chunk index, the plan's JSON line), ordered by chunk."""
        ...


class InvalidPlanSink(Protocol):
    """Collects the plans the planner found invalid; `flush` records them skipped."""

    @property
    def count(self) -> int: ...

    def add(self, plan_id: int, scheduled_date: date | None, reason: str) -> None: ...
    def flush(self) -> None: ...


class PlannerStores(Protocol):
    """The planner's unit of work."""

    def runs(self) -> AbstractContextManager[RunStore]:
        """A run session: the run's advisory lock lives as long as it does."""
        ...

    def snapshot(self, query: DueQuery) -> AbstractContextManager[DueSnapshot]: ...
    def invalid_plans(self, run_id: str) -> AbstractContextManager[InvalidPlanSink]: ...


class QuoteTransaction(Protocol):
    """Statements inside one transaction of `QuoteStore.transaction()`."""

    def try_lock(self, kind: Kind, keys: list[str]) -> list[str]: ...
    def lock(self, kind: Kind, key: str) -> None: ...
    def load(self, kind: Kind, keys: list[str]) -> dict[str, Price]: ...
    def base_fetched(self, base: str) -> bool: ...
    def store(self, kind: Kind, items: list[tuple[str, Price]]) -> None: ...


class QuoteStore(Protocol):
    """One run's stored quotes."""

    def load(self, kind: Kind, keys: list[str]) -> dict[str, Price]: ...
    def transaction(self) -> AbstractContextManager[QuoteTransaction]: ...


class LedgerWriter(Protocol):
    """Applies batches of decided outcomes (`Ledger.prepare`) exactly once."""

    def apply(self, batch: Batch) -> Counter[str]:
        """Executions recorded by status; none for a plan already final."""
        ...


class Writers(Protocol):
    """The chunk's ledger writers, each on a connection of its own."""

    @property
    def ledgers(self) -> Sequence[LedgerWriter]: ...

    def round_trips(self) -> int:
        """Statements sent so far by the chunk's session and its writers."""
        ...


class ChunkSession(Protocol):
    """One attempt at a chunk: its row, the run's quotes, its writers."""

    @property
    def runs(self) -> RunStore: ...
    @property
    def quotes(self) -> QuoteStore: ...

    def writers(self, count: int) -> AbstractContextManager[Writers]: ...


class ExecutorStores(Protocol):
    """The executor's unit of work."""

    def chunk(
        self, run_id: str, index: int, trade_date: date
    ) -> AbstractContextManager[ChunkSession]: ...
    def runs(self) -> AbstractContextManager[RunStore]:
        """A session of its own (to record a failure when the chunk's may be what failed)."""
        ...
