"""`execute_chunk` in this process: a real PostgreSQL; fakes for what is outside it.

The run's files are held in memory (a store with the three methods a child
calls), prices come from scripted sources through the real price chain, and
everything else (quotes shared through `run_quotes`, decisions, the ledger,
the chunk's row and its results) is the executor's own code.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg2.extensions
import pytest
import requests

from common.adapters.db import connect
from common.adapters.marketdata.bootstrap import MarketData
from common.adapters.marketdata.chain import PriceChain
from common.adapters.marketdata.quotes import FxRates
from common.adapters.marketdata.retrying import RetryPolicy
from common.adapters.store.runs import RunRepository
from common.adapters.store.unit_of_work import PostgresStores
from common.domain.errors import ProvidersUnavailable, ProviderUnavailable
from common.domain.models import ChunkRef, ChunkResult, PlanSnapshot, RunManifest
from common.domain.run_key import RunKey, RunLocation
from common.domain.statuses import ChunkStatus
from common.platform.logging import setup_logging
from executor.context import MarketDataOnDemand
from executor.service import ExecutorDeps, execute_chunk
from tests.factories import insert_plans, plan, rows, scalar, snapshot
from tests.ledger_checks import assert_ledger_consistent
from tests.marketdata_fakes import (
    NOW,
    RUN_DATE,
    FakeClock,
    FakeFxSource,
    FakePriceSource,
    MemoryQuotas,
    quote,
)

D = Decimal
RUN_ID = "XNYS-20261127"
NEXT_RUN = date(2026, 12, 28)  # a month on from the 27th is a Sunday: rolled to Monday
WHERE = RunLocation.for_run("runs", "recurring-investments", RunKey("XNYS", RUN_DATE))

# name -> the plan's columns (the factory's defaults otherwise: AAPL, 100 USD, monthly).
PLANS: dict[str, dict[str, Any]] = {
    "bought": {"user_id": "u1"},
    "bought_too": {"user_id": "u2", "amount": D("50.0000")},
    "in_yen": {"user_id": "u3", "currency": "JPY", "amount": D("10000"), "fee": D("100")},
    "below_one_share": {"user_id": "u4", "symbol": "MSFT", "fractional": False},
    "unknown_symbol": {"user_id": "u5", "symbol": "NOSUCH"},
    "edited_since": {"user_id": "u6"},  # the database has version 2, the chunk version 1
}


class RunFilesInMemory:
    """The run's files as a child reads and writes them through `ManifestStore`."""

    def __init__(self, plans: list[PlanSnapshot]) -> None:
        self.plans = plans
        self.manifest = RunManifest(
            schema_version=1,
            run_id=RUN_ID,
            market="XNYS",
            run_date=RUN_DATE,
            created_at=NOW,
            item_count=len(plans),
            chunk_count=1,
            chunks=[
                ChunkRef(
                    index=0,
                    key=WHERE.chunk_key(0),
                    items=len(plans),
                    symbols=len({p.symbol for p in plans}),
                    sha256="0" * 64,
                )
            ],
        )
        self.results: dict[int, ChunkResult] = {}

    def load_manifest(self, where: RunLocation) -> RunManifest:
        assert where == WHERE
        return self.manifest

    def load_chunk(
        self, where: RunLocation, manifest: RunManifest, index: int
    ) -> list[PlanSnapshot]:
        assert (where, manifest, index) == (WHERE, self.manifest, 0)
        return list(self.plans)

    def put_result(self, where: RunLocation, result: ChunkResult) -> None:
        assert where == WHERE
        self.results[result.chunk_index] = result


class Providers:
    """Scripted providers: AAPL at 190, MSFT at 400, NOSUCH unknown; 0.0066 USD per JPY."""

    def __init__(self, *, finnhub_down: bool = False) -> None:
        self.clock = FakeClock(NOW)
        down = ProviderUnavailable("fakefinnhub", "AAPL", "HTTP 503")
        self.prices = FakePriceSource(
            "fakefinnhub",
            {
                "AAPL": down if finnhub_down else quote("fakefinnhub", "AAPL", "190"),
                "MSFT": quote("fakefinnhub", "MSFT", "400"),
            },
        )
        self.fx = FakeFxSource({"JPY": FxRates("fakefx", "JPY", {"USD": D("0.0066")}, NOW)})
        self.session = requests.Session()

    def market_data(self) -> MarketData:
        chain = PriceChain(
            [self.prices],
            fx_source=self.fx,
            max_age_days=4,
            clock=self.clock,
            sleep=self.clock.sleep,
            retry=RetryPolicy(max_attempts=2),
        )
        return MarketData(
            chain=chain,
            session=self.session,
            quota_store=MemoryQuotas(self.clock),
            quotas={},
        )


@pytest.fixture
def planned(
    db: psycopg2.extensions.connection,
) -> Iterator[tuple[dict[str, int], RunFilesInMemory]]:
    """The six plans in the database and in chunk 0 of the run, as the planner leaves them."""
    in_database = {name: plan(**columns) for name, columns in PLANS.items()}
    in_database["edited_since"]["version"] = 2
    ids = dict(zip(PLANS, insert_plans(db, list(in_database.values())), strict=True))
    files = RunFilesInMemory([snapshot(ids[name], **columns) for name, columns in PLANS.items()])
    runs = RunRepository(db)
    runs.claim(RunKey("XNYS", RUN_DATE))
    runs.record_manifested(
        RUN_ID,
        manifest_uri=WHERE.manifest_uri,
        plans_due=len(PLANS),
        invalid_plans=0,
        chunks=files.manifest.chunks,
    )
    yield ids, files
    assert_ledger_consistent(db)


@pytest.fixture
def stdout() -> io.StringIO:
    """Where the child's JSON log lines and its metrics line (CloudWatch EMF) go."""
    stream = io.StringIO()
    setup_logging("json", stream=stream)
    return stream


def _run_chunk(database_dsn: str, files: RunFilesInMemory, providers: Providers) -> ChunkResult:
    deps = ExecutorDeps(
        stores=PostgresStores(partial(connect, database_dsn, attempts=1)),
        files=files,  # type: ignore[arg-type]  # the three methods a child calls
        market_data=MarketDataOnDemand(providers.market_data),
        clock=lambda: NOW,
        write_batch_size=2,  # three batches over two connections
        write_connections=2,
        share_decimals=6,
    )
    try:
        return execute_chunk(deps, WHERE, 0)
    finally:
        providers.session.close()


def test_a_chunk_buys_skips_and_fails_each_plan_as_decided_and_records_it_all(
    db: psycopg2.extensions.connection,
    database_dsn: str,
    planned: tuple[dict[str, int], RunFilesInMemory],
    stdout: io.StringIO,
) -> None:
    ids, files = planned

    result = _run_chunk(database_dsn, files, Providers())

    # The purchases, at one price per symbol, the yen plan converted at the day's rate
    assert rows(
        db,
        "SELECT plan_id, quantity, price, fx_rate, price_source, run_id, trade_date "
        "FROM transactions ORDER BY plan_id",
    ) == [
        (ids["bought"], D("0.526315"), D("190"), D(1), "fakefinnhub", RUN_ID, RUN_DATE),
        (ids["bought_too"], D("0.263157"), D("190"), D(1), "fakefinnhub", RUN_ID, RUN_DATE),
        (ids["in_yen"], D("0.343894"), D("190"), D("0.0066"), "fakefinnhub", RUN_ID, RUN_DATE),
    ]
    # every plan's outcome recorded for its scheduled date,
    assert rows(
        db, "SELECT plan_id, status, reason, chunk_index FROM plan_executions ORDER BY plan_id"
    ) == [
        (ids["bought"], "purchased", None, 0),
        (ids["bought_too"], "purchased", None, 0),
        (ids["in_yen"], "purchased", None, 0),
        (ids["below_one_share"], "skipped", "amount_below_minimum", 0),
        (ids["unknown_symbol"], "failed", "price_unavailable", 0),
        (ids["edited_since"], "skipped", "plan_changed", 0),
    ]
    # schedules moved on for the final outcomes only,
    assert dict(rows(db, "SELECT id, next_run_date FROM recurring_investments")) == {
        ids["bought"]: NEXT_RUN,
        ids["bought_too"]: NEXT_RUN,
        ids["in_yen"]: NEXT_RUN,
        ids["below_one_share"]: NEXT_RUN,
        ids["unknown_symbol"]: RUN_DATE,
        ids["edited_since"]: RUN_DATE,
    }
    # the chunk's row closed with its counts,
    assert rows(
        db, "SELECT status, attempts, purchased, skipped, failed, last_error FROM batch_chunks"
    ) == [("succeeded", 1, 3, 2, 1, None)]
    # and the result returned is the one written for the finalizer.
    assert files.results == {0: result}
    assert (result.run_id, result.chunk_index, result.attempt) == (RUN_ID, 0, 1)
    assert (result.status, result.items) == (ChunkStatus.SUCCEEDED, 6)
    assert (result.purchased, result.skipped, result.failed) == (3, 2, 1)
    assert result.reasons == {
        "amount_below_minimum": 1,
        "price_unavailable": 1,
        "plan_changed": 1,
    }
    assert result.invested == {"USD": D("150.0000"), "JPY": D("10000")}
    assert result.api_calls == {"fakefinnhub": 3, "fakefx": 1}  # one call a symbol and a base
    assert [(f.plan_id, f.status, f.reason) for f in result.failures] == [
        (ids["below_one_share"], "skipped", "amount_below_minimum"),
        (ids["unknown_symbol"], "failed", "price_unavailable"),
        (ids["edited_since"], "skipped", "plan_changed"),
    ]
    # Each with its symbol and the detail behind its reason, for report.json.
    assert [(f.symbol, f.detail) for f in result.failures] == [
        ("MSFT", "100.0000 USD (amount less fee) buys less than one share of MSFT at 400 USD"),
        ("NOSUCH", "fakefinnhub: no such symbol"),
        (
            "AAPL",
            "edited, paused or cancelled after the snapshot; the next run buys what it is now",
        ),
    ]
    # The chunk's metrics, for CloudWatch.
    metrics, *by_provider = [
        json.loads(line) for line in stdout.getvalue().splitlines() if '"_aws"' in line
    ]
    assert (metrics["run_id"], metrics["chunk_index"], metrics["stage"]) == (RUN_ID, 0, "executor")
    assert [metrics[k] for k in ("purchased", "skipped", "failed", "api_calls")] == [3, 2, 1, 4]
    assert metrics["start_delay_ms"] >= 0  # from the manifest's writing to the attempt's start
    # And the calls once more, a line per provider (the dashboard's calls by provider).
    assert {m["provider"]: m["api_calls"] for m in by_provider} == {"fakefinnhub": 3, "fakefx": 1}


def test_rerunning_a_chunk_buys_nothing_twice_and_asks_only_for_what_failed(
    db: psycopg2.extensions.connection,
    database_dsn: str,
    planned: tuple[dict[str, int], RunFilesInMemory],
) -> None:
    _, files = planned
    _run_chunk(database_dsn, files, Providers())
    bought = rows(db, "SELECT * FROM transactions ORDER BY id")
    holdings = rows(db, "SELECT user_id, quantity, cost_basis FROM assets ORDER BY user_id")

    again = Providers()  # a new process: its own chain, nothing cached
    result = _run_chunk(database_dsn, files, again)

    assert rows(db, "SELECT * FROM transactions ORDER BY id") == bought
    assert rows(db, "SELECT user_id, quantity, cost_basis FROM assets ORDER BY user_id") == holdings
    # Stored quotes are reused; a symbol that found no price is asked again.
    assert dict(again.prices.calls) == {"NOSUCH": 1}
    assert dict(again.fx.calls) == {}
    assert (result.attempt, result.purchased, result.skipped, result.failed) == (2, 3, 2, 1)
    assert scalar(db, "SELECT attempts FROM batch_chunks") == 2


def test_a_provider_down_leaves_its_plans_due_and_the_chunk_failed_for_batch_to_retry(
    db: psycopg2.extensions.connection,
    database_dsn: str,
    planned: tuple[dict[str, int], RunFilesInMemory],
) -> None:
    ids, files = planned

    with pytest.raises(ProvidersUnavailable):
        _run_chunk(database_dsn, files, Providers(finnhub_down=True))

    # Every AAPL plan (the edited one too: no price, nothing to compare) is left due.
    assert rows(db, "SELECT plan_id, status, reason FROM plan_executions ORDER BY plan_id") == [
        (ids["bought"], "failed", "provider_error"),
        (ids["bought_too"], "failed", "provider_error"),
        (ids["in_yen"], "failed", "provider_error"),
        (ids["below_one_share"], "skipped", "amount_below_minimum"),
        (ids["unknown_symbol"], "failed", "price_unavailable"),
        (ids["edited_since"], "failed", "provider_error"),
    ]
    assert scalar(db, "SELECT count(*) FROM transactions") == 0
    assert rows(db, "SELECT status, last_error FROM batch_chunks") == [
        ("failed", "provider_error: providers failed for 4 plan(s); Batch retries the chunk")
    ]
    assert files.results[0].status == ChunkStatus.FAILED
    assert files.results[0].reasons["provider_error"] == 4
