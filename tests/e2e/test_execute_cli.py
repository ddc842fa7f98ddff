"""`worthy-batch execute` end to end: real Postgres, moto S3 and the stub providers."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg2.extensions
import pytest

from devkit.stubs.market_server import StubMarketServer
from tests.conftest import AwsStack
from tests.e2e.conftest import Runner, plan_for_children, run_together
from tests.factories import insert_plans, many_plans, plan, rows, scalar
from tests.ledger_checks import assert_ledger_consistent
from tests.runs import child_env, execute_args

D = Decimal
RUN = "XNYS-20261127"
RUN_DATE = date(2026, 11, 27)


@pytest.fixture(autouse=True)
def ledger_stays_consistent(db: psycopg2.extensions.connection) -> Any:
    yield
    assert_ledger_consistent(db)  # the same invariants as `verify`, written independently


def _execute(cli: Runner, index: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
    return cli(*execute_args(RUN_DATE, index), env=env)


def _outcome(db: psycopg2.extensions.connection, plan_id: int) -> tuple[Any, ...]:
    found = rows(db, "SELECT status, reason FROM plan_executions WHERE plan_id = %s", (plan_id,))
    assert len(found) == 1, found
    return found[0]


def _bought(db: psycopg2.extensions.connection, plan_id: int) -> dict[str, Any]:
    found = rows(
        db,
        "SELECT quantity, price, fx_rate, fee, amount, price_source, price_time, trade_date, "
        "price_currency FROM transactions WHERE plan_id = %s",
        (plan_id,),
    )
    assert len(found) == 1, found
    keys = (
        "quantity",
        "price",
        "fx_rate",
        "fee",
        "amount",
        "price_source",
        "price_time",
        "trade_date",
        "price_currency",
    )
    return dict(zip(keys, found[0], strict=True))


def _schedule(db: psycopg2.extensions.connection, plan_id: int) -> tuple[Any, ...]:
    return rows(
        db,
        "SELECT next_run_date, runs_completed, status FROM recurring_investments WHERE id = %s",
        (plan_id,),
    )[0]


def test_a_run_buys_every_kind_of_plan_correctly(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    price = market.price_of("AAPL")
    usd_per_jpy = market.rates_of("JPY")["USD"]
    ids = insert_plans(
        db,
        [
            plan(amount=D("1000"), fractional=True),  # 0 fractional
            plan(user_id="u-whole", amount=D("1000"), fractional=False),  # 1 whole shares
            plan(user_id="u-fee", amount=D("100"), fee=D("1.5")),  # 2 fee
            plan(user_id="u-jpy", amount=D("100000"), currency="JPY", fee=D("100")),  # 3 JPY -> USD
            plan(user_id="u-tiny", amount=D("1"), fractional=False),  # 4 below minimum
            plan(
                user_id="u-end",
                frequency="weekly",
                start_date=date(2026, 11, 6),
                end_date=date(2026, 11, 30),
            ),  # 5 end_date
            plan(
                user_id="u-max",
                frequency="weekly",
                start_date=date(2026, 11, 6),
                max_runs=4,
                runs_completed=3,
            ),  # 6 max_runs
            plan(
                user_id="u-missed",
                frequency="weekly",
                start_date=date(2026, 10, 2),
                next_run_date=date(2026, 10, 30),
            ),  # 7 missed runs
            plan(
                user_id="u-eom", start_date=date(2026, 1, 31), next_run_date=date(2026, 11, 27)
            ),  # 8 month end
            plan(user_id="u-nosuch", symbol="NOSUCH"),  # 9 unknown
            plan(user_id='odd "user" \\ with\ttab'),  # 10 awkward text survives COPY/JSON
        ],
    )
    plan_for_children(cli)
    done = _execute(cli)
    assert done.returncode == 0, done.stderr

    fractional = _bought(db, ids[0])
    assert fractional["quantity"] == (D("1000") / price).quantize(D("0.000001"), "ROUND_DOWN")
    assert fractional["price"] == price and fractional["fx_rate"] == 1
    assert fractional["price_source"] == "finnhub" and fractional["price_time"] is not None
    assert fractional["trade_date"] == date(2026, 11, 27)
    assert fractional["price_currency"] == "USD"

    assert _bought(db, ids[1])["quantity"] == (D("1000") / price).to_integral_value("ROUND_DOWN")
    assert _bought(db, ids[2])["quantity"] == (D("98.5") / price).quantize(
        D("0.000001"), "ROUND_DOWN"
    )

    jpy = _bought(db, ids[3])
    assert jpy["fx_rate"] == usd_per_jpy
    assert jpy["quantity"] == (D("99900") * usd_per_jpy / price).quantize(
        D("0.000001"), "ROUND_DOWN"
    )
    assert jpy["amount"] == D("100000") and jpy["fee"] == D("100")

    assert _outcome(db, ids[4]) == ("skipped", "amount_below_minimum")
    assert _schedule(db, ids[4]) == (date(2026, 12, 28), 0, "active")  # advanced, not counted

    assert _schedule(db, ids[5]) == (date(2026, 12, 4), 1, "completed")
    assert _schedule(db, ids[6]) == (date(2026, 12, 4), 4, "completed")
    assert _schedule(db, ids[7]) == (date(2026, 12, 4), 1, "active")  # bought once
    assert scalar(db, "SELECT count(*) FROM transactions WHERE plan_id = %s", (ids[7],)) == 1
    # Anchored on Jan 31: capped at Nov 30 (not Nov 28 after February), a Monday.
    assert _schedule(db, ids[8]) == (date(2026, 11, 30), 1, "active")
    assert _outcome(db, ids[9]) == ("failed", "price_unavailable")
    assert _outcome(db, ids[10]) == ("purchased", None)
    assert scalar(db, "SELECT user_id FROM assets WHERE user_id LIKE 'odd%%'") == (
        'odd "user" \\ with\ttab'
    )
    assert _schedule(db, ids[9]) == (date(2026, 11, 27), 0, "active")  # stays due

    # One call per distinct symbol (AAPL, NOSUCH on both providers) and per FX base.
    assert market.calls("finnhub") == 2
    assert market.calls("alphavantage") == 1  # NOSUCH falls back, answered unknown
    assert market.calls("exchangerate") == 1
    assert rows(db, "SELECT status, purchased, skipped, failed FROM batch_chunks") == [
        ("succeeded", 9, 1, 1)
    ]


def test_running_the_same_chunk_twice_buys_nothing_the_second_time(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(20, symbols=4))
    plan_for_children(cli)
    assert _execute(cli).returncode == 0
    before = rows(db, "SELECT * FROM transactions ORDER BY id")
    calls = market.calls()
    again = _execute(cli)
    assert again.returncode == 0, again.stderr
    assert rows(db, "SELECT * FROM transactions ORDER BY id") == before
    assert market.calls() == calls  # the rerun prices from run_quotes
    assert scalar(db, "SELECT attempts FROM batch_chunks") == 2


def test_three_processes_on_the_same_chunk_buy_each_plan_once(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    database_dsn: str,
) -> None:
    ids = insert_plans(db, many_plans(300, symbols=5))
    plan_for_children(cli)
    env = child_env(database_dsn, WRITE_BATCH_SIZE="50")
    argv = execute_args(RUN_DATE, 0)
    assert run_together([argv, argv, argv], env) == [0, 0, 0]
    assert scalar(db, "SELECT count(*) FROM transactions") == len(ids)
    assert scalar(db, "SELECT count(*) FROM plan_executions WHERE status = 'purchased'") == 300
    assert market.calls("finnhub") == 5  # one call per symbol between the three of them


@pytest.mark.parametrize(
    "failpoint",
    [
        "executor.after_stage",
        "executor.before_batch_commit",
        "executor.after_batch_commit@2",
        "executor.after_batch_commit@4",
    ],
)
def test_a_child_killed_mid_write_and_rerun_buys_every_plan_exactly_once(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    failpoint: str,
) -> None:
    insert_plans(db, many_plans(100, symbols=4))
    plan_for_children(cli)
    # One writer connection: with two, the batch in flight on the other connection may
    # commit before the kill lands, and "after the 4th commit" would not mean 80 rows.
    killed = _execute(
        cli, WORTHY_FAILPOINTS=failpoint, WRITE_BATCH_SIZE="20", WRITE_CONNECTIONS="1"
    )
    assert killed.returncode == -signal.SIGKILL
    partial = scalar(db, "SELECT count(*) FROM transactions")
    assert partial % 20 == 0 and partial < 100  # whole batches only
    rerun = _execute(cli, WRITE_BATCH_SIZE="20")
    assert rerun.returncode == 0, rerun.stderr
    assert scalar(db, "SELECT count(*) FROM transactions") == 100
    assert scalar(db, "SELECT count(DISTINCT plan_id) FROM transactions") == 100


def test_a_plan_paused_or_edited_after_planning_is_skipped_as_plan_changed(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    paused, edited, untouched = insert_plans(db, many_plans(3, symbols=1))
    plan_for_children(cli)
    with db.cursor() as cur:
        cur.execute("UPDATE recurring_investments SET status = 'paused' WHERE id = %s", (paused,))
        cur.execute(
            "UPDATE recurring_investments SET amount = 5, version = version + 1 WHERE id = %s",
            (edited,),
        )
    assert _execute(cli).returncode == 0
    assert _outcome(db, paused) == ("skipped", "plan_changed")
    assert _outcome(db, edited) == ("skipped", "plan_changed")
    assert _outcome(db, untouched) == ("purchased", None)
    assert _schedule(db, edited)[0] == date(2026, 11, 27)  # untouched, still due


def test_a_provider_error_exits_75_and_a_rerun_after_recovery_buys(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    (plan_id,) = insert_plans(db, [plan(symbol="MSFT")])
    plan_for_children(cli)
    market.set_fault("finnhub", "MSFT", "http_500")
    market.set_fault("alphavantage", "MSFT", "http_500")
    failed = _execute(cli)
    assert failed.returncode == 75
    assert len(failed.stderr.strip().splitlines()) == 1
    assert _outcome(db, plan_id) == ("failed", "provider_error")
    assert scalar(db, "SELECT status FROM batch_chunks") == "failed"
    market.clear_faults()
    recovered = _execute(cli)
    assert recovered.returncode == 0, recovered.stderr
    assert _outcome(db, plan_id) == ("purchased", None)
    assert scalar(db, "SELECT status FROM batch_chunks") == "succeeded"


def test_finnhub_throttling_falls_back_to_alpha_vantage(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    (plan_id,) = insert_plans(db, [plan(symbol="TSLA")])
    plan_for_children(cli)
    market.set_fault("finnhub", "TSLA", "http_429", retry_after=0)
    assert _execute(cli).returncode == 0
    assert _bought(db, plan_id)["price_source"] == "alphavantage"


def test_two_children_sharing_a_split_symbol_make_one_price_call_and_buy_at_one_price(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    database_dsn: str,
) -> None:
    insert_plans(db, many_plans(30, symbols=1))
    plan_for_children(cli, chunk_size=10)
    assert scalar(db, "SELECT chunk_count FROM batch_runs") == 3
    env = child_env(database_dsn)
    argvs = [execute_args(RUN_DATE, i) for i in range(3)]
    assert run_together(argvs, env) == [0, 0, 0]
    assert market.calls("finnhub") == 1
    assert rows(db, "SELECT count(DISTINCT price), count(*) FROM transactions") == [(1, 30)]


def test_a_corrupt_chunk_exits_65_and_writes_nothing(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(5))
    plan_for_children(cli)
    key = next(k for k in aws.object_keys() if "/chunks/" in k)
    aws.s3().put_object(Bucket=aws.bucket, Key=key, Body=b"\x1f\x8b not really gzip")
    done = _execute(cli)
    assert done.returncode == 65
    assert len(done.stderr.strip().splitlines()) == 1 and "sha256" in done.stderr
    assert scalar(db, "SELECT count(*) FROM plan_executions") == 0
    # The attempt is counted and its reason kept, for `status` (tests/e2e/test_reasons.py).
    assert scalar(db, "SELECT attempts FROM batch_chunks") == 1


def test_a_chunk_index_out_of_range_is_an_argument_error_naming_the_chunks(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(5))
    plan_for_children(cli)
    done = _execute(cli, 7)
    assert done.returncode == 78, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "7 is not a chunk of run XNYS-20261127, which has 1 chunk: 0" in line
    negative = cli("execute", "--run-id", RUN, "--chunk-index", "-1")
    assert negative.returncode == 78
    (line,) = negative.stderr.strip().splitlines()
    assert "--chunk-index: -1: chunk indexes start at 0" in line
    assert scalar(db, "SELECT attempts FROM batch_chunks") == 0  # nothing ran


def test_the_chunk_index_comes_from_the_batch_array_index(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(6, symbols=6))
    plan_for_children(cli, chunk_size=3)
    manifest_uri = scalar(db, "SELECT manifest_uri FROM batch_runs")
    done = cli("execute", env={"MANIFEST_URI": manifest_uri, "AWS_BATCH_JOB_ARRAY_INDEX": "1"})
    assert done.returncode == 0, done.stderr
    assert rows(db, "SELECT chunk_index, attempts FROM batch_chunks ORDER BY 1") == [(0, 0), (1, 1)]


def test_an_executor_child_imports_nothing_of_the_planner_the_dev_kit_or_holidays(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    database_dsn: str,
) -> None:
    # Every module a child imports is start-up time it pays (and, in the image, code it
    # ships): a whole chunk bought, with Python's own record of what was imported. Its
    # calendar comes from run.json's closures, so not even the holidays library loads.
    insert_plans(db, [*many_plans(6, symbols=2), plan(user_id="j", currency="JPY")])
    plan_for_children(cli)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "entry.cli",
         "execute", "--run-id", RUN, "--chunk-index", "0"],
        env=child_env(database_dsn),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert scalar(db, "SELECT count(*) FROM transactions") == 7
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "executor.service" in imported  # the record is complete
    foreign = sorted(
        name
        for name in imported
        if name.split(".")[0]
        in (
            "planner", "finalizer", "ops", "devkit", "tests", "pgserver", "moto", "yaml", "boto3",
            "holidays",
        )
    )  # fmt: skip
    assert foreign == []
