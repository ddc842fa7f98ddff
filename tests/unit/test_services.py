"""The four services on fakes: plan_run, execute_chunk, finalize_run and redrive_run.

No PostgreSQL, no S3, no network: each service is handed the in-memory unit
of work and files of tests/unit/fakes.py, and scripted price sources through
the real price chain (tests/marketdata_fakes.py). The integration suites drive
the same services against the real store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
import requests

from common.adapters.marketdata.bootstrap import MarketData
from common.adapters.marketdata.chain import PriceChain
from common.adapters.marketdata.quotes import FxRates
from common.adapters.marketdata.retrying import RetryPolicy
from common.domain.calendar import resolve_run_day
from common.domain.chunking import ChunkPolicy
from common.domain.errors import (
    DatabaseUnavailable,
    ProvidersUnavailable,
    ProviderUnavailable,
    StorageUnavailable,
)
from common.domain.models import ChunkResult
from common.domain.run_key import RunKey, RunLocation
from common.domain.statuses import ChunkStatus, Execution, Reason, RunStatus
from executor.context import MarketDataOnDemand
from executor.service import ExecutorDeps, execute_chunk
from finalizer.service import finalize_run
from ops.redrive import redrive_run
from planner.request import PlanRequest
from planner.service import PlannerDeps, PlanResult, plan_run
from tests.factories import snapshot
from tests.marketdata_fakes import (
    NOW,
    RUN_DATE,
    FakeClock,
    FakeFxSource,
    FakePriceSource,
    MemoryQuotas,
    quote,
)
from tests.unit.fakes import FakeDatabase, FakeRunFiles, FakeRunStore, FakeStores, FakeSubmitter

D = Decimal
RUN_ID = "XNYS-20261127"
THANKSGIVING = date(2026, 11, 26)
BUCKET, PREFIX = "runs", "recurring-investments"
WHERE = RunLocation.for_run(BUCKET, PREFIX, RunKey("XNYS", RUN_DATE))


class World:
    """One run's outside world in memory: the database, the bucket, Batch, the providers."""

    def __init__(self, *, finnhub_down: bool = False) -> None:
        self.db = FakeDatabase()
        self.stores = FakeStores(self.db)
        self.files = FakeRunFiles()
        self.submitter = FakeSubmitter()
        self.clock = FakeClock(NOW)
        self.finnhub_down = finnhub_down
        self.prices: FakePriceSource | None = None
        self.sessions: list[requests.Session] = []

    @property
    def runs(self) -> FakeRunStore:
        return FakeRunStore(self.db)

    def due(self, *plans: dict[str, Any]) -> None:
        """Plans 1, 2, ... due on the run date (columns as tests/factories.py's `plan`)."""
        self.db.due = [snapshot(i, **columns) for i, columns in enumerate(plans, start=1)]

    def plan(self, run_date: date = RUN_DATE, chunk_size: int = 2) -> PlanResult:
        deps = PlannerDeps(
            stores=self.stores,
            files=self.files,
            bucket=BUCKET,
            prefix=PREFIX,
            submitter=self.submitter,
            clock=lambda: NOW,
        )
        day = resolve_run_day("XNYS", run_date, NOW)
        return plan_run(deps, PlanRequest(day, ChunkPolicy(explicit=chunk_size)))

    def market_data(self) -> MarketData:
        down = ProviderUnavailable("fakefinnhub", "AAPL", "HTTP 503")
        self.prices = FakePriceSource(
            "fakefinnhub",
            {
                "AAPL": down if self.finnhub_down else quote("fakefinnhub", "AAPL", "190"),
                "MSFT": quote("fakefinnhub", "MSFT", "400"),
            },
        )
        fx = FakeFxSource({"JPY": FxRates("fakefx", "JPY", {"USD": D("0.0066")}, NOW)})
        chain = PriceChain(
            [self.prices],
            fx_source=fx,
            max_age_days=4,
            clock=self.clock,
            sleep=self.clock.sleep,
            retry=RetryPolicy(max_attempts=2),
        )
        session = requests.Session()  # never used: the sources are scripted
        self.sessions.append(session)
        return MarketData(chain, session, MemoryQuotas(self.clock), {})

    def execute(self, index: int) -> Any:
        deps = ExecutorDeps(
            stores=self.stores,
            files=self.files,
            market_data=MarketDataOnDemand(self.market_data),
            clock=lambda: NOW,
            write_batch_size=2,
            write_connections=2,
            share_decimals=6,
        )
        return execute_chunk(deps, WHERE, index)

    def close(self) -> None:
        for session in self.sessions:
            session.close()

    def bought(self) -> list[int]:
        return sorted(p.plan_id for p in self.db.purchases)

    def executions(self) -> dict[int, tuple[str, str | None]]:
        return {key[0]: (e.status, e.reason) for key, e in sorted(self.db.executions.items())}


@pytest.fixture
def world() -> Iterator[World]:
    made = World()
    yield made
    made.close()


# -- plan_run


def test_a_closed_market_day_is_recorded_and_nothing_is_submitted(world: World) -> None:
    world.due({})

    result = world.plan(THANKSGIVING)

    assert result.status == RunStatus.MARKET_CLOSED
    assert world.runs.require("XNYS-20261126").status == RunStatus.MARKET_CLOSED
    assert world.submitter.submitted == []
    assert world.files.objects == {}


def test_a_day_with_nothing_due_succeeds_at_once_without_jobs(world: World) -> None:
    result = world.plan()

    assert (result.status, result.chunk_count) == (RunStatus.SUCCEEDED, 0)
    assert world.runs.require(RUN_ID).status == RunStatus.SUCCEEDED
    assert world.submitter.submitted == []


def test_due_plans_are_chunked_written_and_submitted_once(world: World) -> None:
    world.due({}, {"user_id": "u2"}, {"symbol": "MSFT"})

    first = world.plan(chunk_size=2)
    again = world.plan(chunk_size=2)

    assert (first.status, first.plans_due, first.chunk_count) == (RunStatus.SUBMITTED, 3, 2)
    assert len(world.submitter.submitted) == 1  # the second planner found it submitted
    assert again.status == RunStatus.SUBMITTED and "already submitted" in again.message
    run = world.runs.require(RUN_ID)
    assert (run.manifest_uri, run.executor_job_id) == (WHERE.manifest_uri, "job-1-executor")
    assert world.runs.release_of(RUN_ID) is not None
    manifest = world.files.load_manifest(WHERE)
    planned = [world.files.load_chunk(WHERE, manifest, i) for i in range(2)]
    assert sorted(p.plan_id for chunk in planned for p in chunk) == [1, 2, 3]
    assert [c.status for c in world.runs.chunks(RUN_ID)] == [ChunkStatus.PENDING] * 2
    assert world.db.locked == set()  # the run's lock is given back


def test_a_run_already_complete_is_left_alone(world: World) -> None:
    world.due({})
    world.plan()
    world.runs.set_status(RUN_ID, RunStatus.SUCCEEDED)

    result = world.plan()

    assert result.status == RunStatus.SUCCEEDED and "already complete" in result.message
    assert len(world.submitter.submitted) == 1


# -- execute_chunk

BUY_SKIP_FAIL = (
    {"user_id": "u1"},  # bought at 190
    {"user_id": "u3", "currency": "JPY", "amount": D("10000"), "fee": D("100")},  # converted
    {"user_id": "u4", "symbol": "MSFT", "fractional": False},  # less than one share
    {"user_id": "u5", "symbol": "NOSUCH"},  # no provider knows it
)


def test_a_chunk_buys_skips_and_fails_each_plan_as_decided(world: World) -> None:
    world.due(*BUY_SKIP_FAIL)
    world.plan(chunk_size=10)

    result = world.execute(0)

    assert (result.purchased, result.skipped, result.failed) == (2, 1, 1)
    assert world.bought() == [1, 2]
    assert world.executions() == {
        1: (Execution.PURCHASED, None),
        2: (Execution.PURCHASED, None),
        3: (Execution.SKIPPED, Reason.AMOUNT_BELOW_MINIMUM),
        4: (Execution.FAILED, Reason.PRICE_UNAVAILABLE),
    }
    assert world.runs.chunks(RUN_ID)[0].status == ChunkStatus.SUCCEEDED
    assert world.files.load_results(WHERE, 1)[0] == result


def test_rerunning_a_chunk_buys_nothing_twice(world: World) -> None:
    world.due(*BUY_SKIP_FAIL)
    world.plan(chunk_size=10)
    world.execute(0)

    again = world.execute(0)

    assert world.bought() == [1, 2]  # one purchase each
    assert (again.purchased, again.attempt) == (2, 2)
    assert world.prices is not None and world.prices.calls["AAPL"] == 0  # the stored quote


def test_a_rerun_whose_prices_are_all_stored_never_builds_the_market_data(world: World) -> None:
    world.due(*BUY_SKIP_FAIL[:3])  # every symbol and FX base prices
    world.plan(chunk_size=10)
    first = world.execute(0)
    assert len(world.sessions) == 1 and first.api_calls == {"fakefinnhub": 2, "fakefx": 1}

    again = world.execute(0)

    assert len(world.sessions) == 1  # the rerun built no clients, made no call
    assert (again.purchased, again.attempt, again.api_calls) == (2, 2, {})
    assert {k: v for k, v in again.timings_ms.items() if k.startswith("quota_")} == {
        "quota_round_trips": 0,
        "quota_ms": 0,
        "quota_wait_ms": 0,
        "quota_slots_thrown_away": 0,
    }


def test_a_provider_error_fails_the_chunk_so_that_batch_retries_it() -> None:
    world = World(finnhub_down=True)
    world.due({}, {"user_id": "u2", "symbol": "MSFT"})
    world.plan(chunk_size=10)

    with pytest.raises(ProvidersUnavailable):
        world.execute(0)

    world.close()
    assert world.bought() == [2]
    assert world.executions()[1] == (Execution.FAILED, Reason.PROVIDER_ERROR)
    chunk = world.runs.chunks(RUN_ID)[0]
    assert chunk.status == ChunkStatus.FAILED and Reason.PROVIDER_ERROR in (chunk.last_error or "")


class UnwritableResults(FakeRunFiles):
    """A bucket that takes everything but a chunk's results: `error` instead."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def put_result(self, where: RunLocation, result: ChunkResult) -> None:
        raise self.error


class DeafRunStore(FakeRunStore):
    def fail_chunk(self, run_id: str, index: int, error: str, *, started: bool) -> None:
        raise psycopg2.OperationalError("server closed the connection unexpectedly")


class DeafToFailures(FakeStores):
    """Stores whose every write of why a chunk failed is lost with the connection."""

    @contextmanager
    def runs(self) -> Iterator[FakeRunStore]:
        yield DeafRunStore(self.db)


RECORDED_OR_NOT: list[tuple[Exception, str | None]] = [
    (StorageUnavailable("s3://runs/results/0.json"), "exit 75: S3 unavailable after 1 attempt(s)"),
    (psycopg2.IntegrityError("duplicate key value"), "IntegrityError('duplicate key value')"),
    (ZeroDivisionError("a bug"), "ZeroDivisionError('a bug')"),
    # The database is what failed: it cannot hear why, so nothing is written.
    (DatabaseUnavailable("connection refused"), None),
    (psycopg2.OperationalError("server closed the connection unexpectedly"), None),
    (psycopg2.InterfaceError("connection already closed"), None),
]


@pytest.mark.parametrize(
    ("error", "recorded"), RECORDED_OR_NOT, ids=[type(e).__name__ for e, _ in RECORDED_OR_NOT]
)
def test_a_failed_chunk_records_why_unless_the_database_is_what_failed(
    world: World, error: Exception, recorded: str | None
) -> None:
    world.files = UnwritableResults(error)
    world.due({"user_id": "u1"})
    world.plan(chunk_size=10)

    with pytest.raises(type(error)) as raised:
        world.execute(0)

    assert raised.value is error  # raised as it was, for the process edge to sort
    chunk = world.runs.chunks(RUN_ID)[0]
    if recorded is None:
        assert (chunk.status, chunk.attempts, chunk.last_error) == (ChunkStatus.RUNNING, 1, None)
    else:
        assert (chunk.status, chunk.attempts) == (ChunkStatus.FAILED, 1)
        assert (chunk.last_error or "").startswith(recorded), chunk.last_error


def test_a_chunk_whose_failure_cannot_be_recorded_still_raises_its_own_error(
    world: World,
) -> None:
    error = StorageUnavailable("s3://runs/results/0.json")
    world.files = UnwritableResults(error)
    world.stores = DeafToFailures(world.db)
    world.due({"user_id": "u1"})
    world.plan(chunk_size=10)

    with pytest.raises(StorageUnavailable) as raised:
        world.execute(0)

    assert raised.value is error  # not the lost connection's error
    chunk = world.runs.chunks(RUN_ID)[0]
    assert (chunk.status, chunk.last_error) == (ChunkStatus.RUNNING, None)


# -- finalize_run


def _planned_two_chunks(world: World) -> None:
    world.due({"user_id": "u1"}, {"user_id": "u2", "symbol": "MSFT", "amount": D("500")})
    world.plan(chunk_size=1)  # AAPL in chunk 0, MSFT in chunk 1


def test_a_run_whose_chunks_all_succeeded_is_finalized_succeeded(world: World) -> None:
    _planned_two_chunks(world)
    world.execute(0)
    world.execute(1)

    done = finalize_run(world.runs, world.files, RUN_ID, clock=lambda: NOW)

    assert done.status == RunStatus.SUCCEEDED
    assert world.runs.require(RUN_ID).status == RunStatus.SUCCEEDED
    report = world.files.report(WHERE)
    assert report["outcomes"] == {"purchased": 2, "skipped": 0, "failed": 0}
    assert report["invested"] == {"USD": "600.0000"}


def test_a_run_with_a_failed_chunk_is_partial_and_safe_to_finalize_again() -> None:
    world = World(finnhub_down=True)
    _planned_two_chunks(world)
    with pytest.raises(ProvidersUnavailable):
        world.execute(0)
    world.execute(1)
    world.close()

    first = finalize_run(world.runs, world.files, RUN_ID, clock=lambda: NOW)
    again = finalize_run(world.runs, world.files, RUN_ID, clock=lambda: NOW)

    assert first.status == again.status == RunStatus.PARTIAL
    assert first.report == again.report
    assert first.report["chunks"] == {"total": 2, "succeeded": 1, "failed": [0], "pending": []}
    assert world.runs.require(RUN_ID).status == RunStatus.PARTIAL


def test_a_run_no_chunk_of_which_succeeded_is_failed(world: World) -> None:
    _planned_two_chunks(world)  # and no child ever ran

    done = finalize_run(world.runs, world.files, RUN_ID, clock=lambda: NOW)

    assert done.status == RunStatus.FAILED
    assert done.report["chunks"]["pending"] == [0, 1]


# -- redrive_run


def test_a_redrive_resubmits_only_the_chunks_that_did_not_succeed() -> None:
    world = World(finnhub_down=True)
    _planned_two_chunks(world)
    with pytest.raises(ProvidersUnavailable):
        world.execute(0)
    world.execute(1)
    world.close()
    finalize_run(world.runs, world.files, RUN_ID, clock=lambda: NOW)

    message = redrive_run(world.runs, world.submitter, RUN_ID, world.files)

    assert "redrive 1" in message
    (run, chunks, number) = world.submitter.redriven[0]
    assert (run.run_id, chunks, number) == (RUN_ID, [0], 1)
    assert world.files.load_redrive(WHERE, 1) is not None
    assert world.runs.require(RUN_ID).redrives == 1


def test_a_redrive_of_a_run_whose_chunks_all_succeeded_does_nothing(world: World) -> None:
    _planned_two_chunks(world)
    world.execute(0)
    world.execute(1)
    finalize_run(world.runs, world.files, RUN_ID, clock=lambda: NOW)

    message = redrive_run(world.runs, world.submitter, RUN_ID, world.files)

    assert "nothing to redrive" in message
    assert world.submitter.redriven == []
    assert world.runs.require(RUN_ID).redrives == 0


def test_a_redrive_finalizes_a_run_whose_finalizer_never_ran(world: World) -> None:
    _planned_two_chunks(world)
    world.execute(0)
    world.execute(1)

    message = redrive_run(world.runs, world.submitter, RUN_ID, world.files)

    assert "finalized it: succeeded" in message
    assert world.submitter.redriven == []
    assert world.files.report(WHERE)["status"] == RunStatus.SUCCEEDED
