"""`worthy-batch watchdog` through the CLI: a market day's run missing, stuck or final, and
a holiday. The final run is played on the local Batch emulator (`--submitter local`)."""

from __future__ import annotations

import psycopg2.extensions

from devkit.stubs.market_server import StubMarketServer
from tests.conftest import AwsStack
from tests.e2e.conftest import Runner, plan_for_children
from tests.factories import insert_plans, many_plans, scalar

DAY = "2026-11-27"  # a Friday the exchange trades (a short day)
RUN = "XNYS-20261127"


def test_a_market_day_without_a_run_exits_1_saying_to_check_the_schedule(
    cli: Runner, db: psycopg2.extensions.connection
) -> None:
    done = cli("watchdog", "--run-date", DAY)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"worthy-batch watchdog: no run {RUN}: XNYS trades on {DAY}")
    assert f"worthy-batch submit --run-date {DAY} --market XNYS" in lines[0]


def test_a_run_whose_chunks_have_not_all_ended_exits_1_naming_what_is_done(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(20, symbols=2))
    plan_for_children(cli, chunk_size=10, run_date=DAY)  # submitted; children left to us
    first = cli("execute", "--run-id", RUN, "--chunk-index", "0")
    assert first.returncode == 0, first.stderr

    done = cli("watchdog", "--run-date", DAY)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{RUN} is running since " in lines[0]
    assert "(1 of 2 chunks succeeded)" in lines[0]
    assert f"worthy-batch status --run-id {RUN}" in lines[0]
    assert f"worthy-batch redrive --run-id {RUN}" in lines[0]


def test_a_final_run_exits_0_naming_its_status(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(20, symbols=4))
    planned = cli(
        "plan",
        "--run-date",
        DAY,
        "--submitter",
        "local",
        env={"CHUNK_SIZE": "10", "LOCAL_PARALLELISM": "2"},
    )
    assert planned.returncode == 0, planned.stderr
    assert scalar(db, "SELECT status FROM batch_runs") == "succeeded"

    done = cli("watchdog", "--run-date", DAY, "--market", "XNYS")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{RUN} succeeded at ")


def test_a_holiday_exits_0_saying_why_and_needs_no_run(
    cli: Runner, db: psycopg2.extensions.connection
) -> None:
    done = cli("watchdog", "--run-date", "2026-11-26")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "XNYS is closed on 2026-11-26 (Thanksgiving Day); no run is due\n"
    assert scalar(db, "SELECT count(*) FROM batch_runs") == 0


def test_a_future_date_is_an_argument_error(cli: Runner) -> None:
    done = cli("watchdog", "--run-date", "2999-01-04")
    assert done.returncode == 78
    assert "in the future" in done.stderr and len(done.stderr.splitlines()) == 1
