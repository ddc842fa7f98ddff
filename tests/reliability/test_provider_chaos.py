"""Every fault of the stub providers, and seeded random mixes of them, across a chunk.

Whatever the providers do, a purchase is only ever made at the stub's real
price for the symbol (never zero, negative, stale, or read from a throttle or
error body), at its real FX rate, with a quote no older than
MAX_QUOTE_AGE_DAYS; every plan ends `purchased` or `failed` with the reason
an independent model of the contract gives (tests/reliability/chain_model.py);
the chunk exits 75 exactly when some plan is left with `provider_error`; and
after the providers recover, a rerun buys the rest, once. The executor runs
through `entry.cli.main` in-process: what is under test is the chain and
the ledger, not the interpreter.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg2.extensions
import pytest

from common.adapters import aws as aws_clients
from common.adapters.manifest_store import ManifestStore
from common.domain.models import PlanSnapshot
from common.domain.run_key import RunKey, RunLocation
from devkit.stubs.market_faults import ALPHA_VANTAGE, EXCHANGE_RATE, FAULTS, FINNHUB, PROVIDERS
from devkit.stubs.market_server import StubMarketServer
from tests.conftest import AwsStack
from tests.factories import insert_plans, plan, rows
from tests.reliability.chain_model import Expected, Scripted, expected_outcomes
from tests.reliability.conftest import InProcess, assert_sound
from tests.runs import PREFIX, execute_args, plan_day

MAX_QUOTE_AGE_DAYS = 4
ONE = Decimal(1)
# Healthy bases go between faulty ones, so a breaker opens only where a test means it to.
CURRENCIES = sorted(
    ["AUD", "BRL", "CAD", "CHF", "CNY", "DKK", "EUR", "GBP", "HKD", "INR"]
    + ["JPY", "KRW", "MXN", "NOK", "NZD", "PLN", "SEK", "SGD", "ZAR"]
)
Faults = dict[tuple[str, str], Scripted]


@pytest.fixture(autouse=True)
def _one_call_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # The model replays the chain call by call; with calls in flight together, which
    # symbols a tripped circuit breaker skips depends on timing, not on the contract.
    monkeypatch.setenv("PRICE_FETCH_THREADS", "1")


def _chunks(aws: AwsStack, day: date) -> list[list[PlanSnapshot]]:
    store = ManifestStore(aws_clients.s3_client())
    where = RunLocation.for_run(aws.bucket, PREFIX, RunKey("XNYS", day))
    manifest = store.load_manifest(where)
    return [store.load_chunk(where, manifest, i) for i in range(manifest.chunk_count)]


def _script(market: StubMarketServer, faults: Faults) -> None:
    market.clear_faults()
    for (provider, key), scripted in faults.items():
        # Retry-After 0: the retry itself is what is under test, not the wait.
        market.set_fault(provider, key, scripted.fault, scripted.times, retry_after=0)


def _outcomes(
    db: psycopg2.extensions.connection, chunks: list[list[PlanSnapshot]]
) -> dict[int, Expected]:
    """The recorded outcome of each plan of `chunks`, for the date it was planned for."""
    found = rows(
        db,
        "SELECT e.plan_id, e.status, e.reason, t.price_source FROM plan_executions e "
        "JOIN unnest(%s::bigint[], %s::date[]) AS c(plan_id, scheduled_date) "
        "USING (plan_id, scheduled_date) LEFT JOIN transactions t ON t.id = e.transaction_id",
        (
            [p.plan_id for c in chunks for p in c],
            [p.scheduled_date for c in chunks for p in c],
        ),
    )
    return {p: Expected(status, reason, source) for p, status, reason, source in found}


def _assert_every_purchase_at_a_real_price(
    db: psycopg2.extensions.connection, market: StubMarketServer
) -> None:
    bought = rows(
        db,
        "SELECT r.symbol, r.currency, t.price, t.price_time, t.trade_date, t.fx_rate, "
        "t.price_currency FROM transactions t JOIN recurring_investments r ON r.id = t.plan_id",
    )
    for symbol, currency, price, price_time, trade_date, fx_rate, price_currency in bought:
        assert price > 0 and price == market.price_of(symbol), (symbol, price)
        oldest = trade_date - timedelta(days=MAX_QUOTE_AGE_DAYS)
        assert price_time.date() >= oldest, (symbol, price_time)
        expected_rate = ONE if currency == "USD" else market.rates_of(currency)["USD"]
        assert fx_rate == expected_rate and price_currency == "USD", (symbol, currency, fx_rate)


def _run_chaos(
    in_process: InProcess,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    database_dsn: str,
    day: date,
    faults: Faults,
) -> tuple[list[list[PlanSnapshot]], dict[int, Expected], set[tuple[str, str]]]:
    """Plan `day` (one chunk), script `faults`, run the chunk; check it against the model."""
    plan_day(database_dsn, ManifestStore(aws_clients.s3_client()), aws.bucket, day, 500)
    chunks = _chunks(aws, day)
    assert len(chunks) == 1
    expected, served = expected_outcomes(chunks, faults, unknown={"NOSUCH"})
    _script(market, faults)
    market.reset_calls()

    done = in_process(*execute_args(day, 0))

    provider_errors = [p for p, e in expected.items() if e.reason == "provider_error"]
    assert done.code == (75 if provider_errors else 0), done.err
    if provider_errors:
        assert len(done.err.strip().splitlines()) == 1, done.err
        assert f"{len(provider_errors)} plan(s) still pending" in done.err
    assert _outcomes(db, chunks) == expected
    for provider in PROVIDERS:
        for fault in FAULTS[provider]:
            count = market.faults_served(provider, fault)
            assert (count > 0) == ((provider, fault) in served), (provider, fault, count)
    _assert_every_purchase_at_a_real_price(db, market)
    assert_sound(db, day)
    return chunks, expected, served


def _recover(
    in_process: InProcess,
    db: psycopg2.extensions.connection,
    market: StubMarketServer,
    day: date,
    chunks: list[list[PlanSnapshot]],
    expected: dict[int, Expected],
) -> None:
    """Providers healthy again: a rerun buys every plan left due, and nothing twice."""
    market.clear_faults()
    rerun = in_process(*execute_args(day, 0))
    assert rerun.code == 0, rerun.err
    after = _outcomes(db, chunks)
    for plan_id, before in expected.items():
        if before.status == "purchased":
            assert after[plan_id] == before  # untouched: final
        elif after[plan_id].status != "purchased":
            assert after[plan_id] == Expected("failed", "price_unavailable")  # NOSUCH only
    _assert_every_purchase_at_a_real_price(db, market)
    assert_sound(db, day)


def test_every_fault_of_every_provider_across_a_chunk(
    in_process: InProcess,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    database_dsn: str,
) -> None:
    day = date(2026, 11, 16)
    faults: Faults = {}
    plans: list[dict[str, Any]] = [plan(user_id="nosuch", symbol="NOSUCH", next_run_date=day)]
    design: list[tuple[str | None, str | None]] = []
    for fault in sorted(FAULTS[FINNHUB] - {"http_401"}):
        # Alpha Vantage prices it; then Alpha Vantage answers but cannot; then a healthy
        # symbol resets Finnhub's count of failures in a row.
        design += [(fault, None), (fault, "empty_quote"), (None, None)]
    for fault in sorted(FAULTS[ALPHA_VANTAGE]):
        # Finnhub does not know it, so Alpha Vantage decides; then a symbol it prices.
        design += [("zeros", fault), ("zeros", None)]
    # A refused key stops Finnhub for the rest of the chunk: last, then one it would have priced.
    design += [("http_401", None), (None, None)]
    for number, (finnhub, alpha_vantage) in enumerate(design):
        symbol = f"P{number:02d}"
        plans.append(plan(user_id=f"u{number}", symbol=symbol, next_run_date=day))
        if finnhub:
            faults[(FINNHUB, symbol)] = Scripted(finnhub)
        if alpha_vantage:
            faults[(ALPHA_VANTAGE, symbol)] = Scripted(alpha_vantage)

    # FX: one plan per base currency, faulty and healthy bases in turn; a refused key
    # last (the other refusal, invalid-key, is forced into the seeded mixes below).
    er_faults = sorted(FAULTS[EXCHANGE_RATE] - {"invalid-key", "inactive-account"})
    er_faults.append("inactive-account")
    for number, currency in enumerate(CURRENCIES[: 2 * len(er_faults)]):
        if number % 2 == 0:
            faults[(EXCHANGE_RATE, currency)] = Scripted(er_faults[number // 2])
        plans.append(
            plan(
                user_id=f"fx{number}",
                symbol="FXOK",
                currency=currency,
                amount=Decimal(100000),
                next_run_date=day,
            )
        )
    insert_plans(db, plans)

    chunks, expected, served = _run_chaos(in_process, db, aws, market, database_dsn, day, faults)

    assert served == {
        (p, f) for p in PROVIDERS for f in FAULTS[p] if (p, f) != (EXCHANGE_RATE, "invalid-key")
    }
    reasons = {e.reason for e in expected.values()}
    assert reasons == {None, "price_unavailable", "provider_error"}
    assert {e.source for e in expected.values() if e.source} == {FINNHUB, ALPHA_VANTAGE}
    _recover(in_process, db, market, day, chunks, expected)


def test_seeded_random_mixes_of_faults_never_buy_at_a_bad_price(
    in_process: InProcess,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    database_dsn: str,
) -> None:
    rng = random.Random(7)
    served_overall: set[tuple[str, str]] = set()
    days = [date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19)]
    carried = 0
    for trial, day in enumerate(days):
        faults: Faults = {}
        plans = []
        for number in range(12):
            symbol = f"M{trial}{number:02d}"
            plans.append(plan(user_id=f"m{trial}-{number}", symbol=symbol, next_run_date=day))
            for provider in (FINNHUB, ALPHA_VANTAGE):
                if rng.random() < 0.6:
                    fault = rng.choice(sorted(FAULTS[provider]))
                    faults[(provider, symbol)] = Scripted(fault, rng.choice([None, None, 1, 2]))
        for number, currency in enumerate(rng.sample(CURRENCIES, 4)):
            plans.append(
                plan(
                    user_id=f"x{trial}-{number}",
                    symbol=f"M{trial}{number:02d}",
                    currency=currency,
                    amount=Decimal(100000),
                    next_run_date=day,
                )
            )
            if trial == 0 and number == 3:
                faults[(EXCHANGE_RATE, currency)] = Scripted("invalid-key")
            elif rng.random() < 0.6:
                fault = rng.choice(sorted(FAULTS[EXCHANGE_RATE]))
                faults[(EXCHANGE_RATE, currency)] = Scripted(fault, rng.choice([None, 1, 2]))
        insert_plans(db, plans)

        # Plans a trial left failed are due again: the next day's run re-evaluates them.
        chunks, expected, served = _run_chaos(
            in_process, db, aws, market, database_dsn, day, faults
        )
        carried += sum(1 for p in chunks[0] if p.scheduled_date < day)
        served_overall |= served
    _recover(in_process, db, market, days[-1], chunks, expected)
    assert carried > 0  # some plans missed a day and were bought on a later one
    assert (EXCHANGE_RATE, "invalid-key") in served_overall
