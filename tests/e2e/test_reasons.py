"""A reason for everything, where people look: status, report.json, explain, the logs."""

from __future__ import annotations

import json
import subprocess
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg2.extensions

from devkit.stubs.market_server import StubMarketServer
from tests.conftest import AwsStack
from tests.e2e.conftest import Runner, plan_for_children
from tests.factories import insert_plans, many_plans, plan, scalar
from tests.runs import execute_args, run_report

RUN = "XNYS-20261127"
RUN_DATE = date(2026, 11, 27)


def _logged(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"time"')]


def _messages(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [entry["message"] for entry in _logged(done)]


def _bad_day(cli: Runner, db: psycopg2.extensions.connection) -> dict[str, int]:
    """A run with a plan of each kind that is not bought, executed and finalized."""
    names = ["bought", "below_minimum", "no_price", "invalid"]
    ids = insert_plans(
        db,
        [
            plan(user_id="a", symbol="AAPL"),
            plan(user_id="b", symbol="MSFT", amount=Decimal("1"), fractional=False),
            plan(user_id="c", symbol="NOSUCH"),
            plan(user_id="d", symbol="AAPL", currency="ZZZ"),
        ],
    )
    plan_for_children(cli)
    executed = cli(*execute_args(RUN_DATE, 0))
    assert executed.returncode == 0, executed.stderr
    finalized = cli("finalize", "--run-id", RUN)
    assert finalized.returncode == 0, finalized.stderr
    return dict(zip(names, ids, strict=True))


def test_report_lists_the_invalid_rows_and_each_unbought_plan_with_symbol_and_detail(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    ids = _bad_day(cli, db)
    report = run_report(aws)
    assert report["invalid_rows"] == {
        "count": 1,
        "reasons": {"invalid_plan: unknown currency 'ZZZ'": 1},
        "listed": [
            {
                "plan_id": ids["invalid"],
                "symbol": "AAPL",
                "reason": "invalid_plan: unknown currency 'ZZZ'",
            }
        ],
    }
    by_plan = {f["plan_id"]: f for f in report["failures"]}
    assert set(by_plan) == {ids["below_minimum"], ids["no_price"]}
    no_price = by_plan[ids["no_price"]]
    assert (no_price["symbol"], no_price["status"], no_price["reason"]) == (
        "NOSUCH",
        "failed",
        "price_unavailable",
    )
    # What each provider answered, in the chain's order.
    assert no_price["detail"] == "finnhub: no such symbol; alphavantage: no such symbol"
    below = by_plan[ids["below_minimum"]]
    assert (below["symbol"], below["reason"]) == ("MSFT", "amount_below_minimum")
    assert below["detail"].startswith("1.0000 USD (amount less fee) buys less than one share")
    assert report["chunk_errors"] == []


def test_the_finalizer_logs_the_invalid_rows_and_each_unbought_plan_with_its_reason(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    ids = _bad_day(cli, db)
    again = cli("finalize", "--run-id", RUN)  # safe to run again; it says the same
    messages = _messages(again)
    assert "invalid rows, skipped (stay due until the app fixes them): 1" in messages
    assert "  1 x invalid_plan: unknown currency 'ZZZ'" in messages
    assert "not bought: 2 plan(s)" in messages
    assert (
        f"  plan {ids['no_price']} NOSUCH: failed price_unavailable - "
        "finnhub: no such symbol; alphavantage: no such symbol"
    ) in messages


def test_status_shows_why_a_tampered_chunk_failed_and_counts_the_attempt(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(5))
    plan_for_children(cli)
    key = next(k for k in aws.object_keys() if "/chunks/" in k)
    aws.s3().put_object(Bucket=aws.bucket, Key=key, Body=b"\x1f\x8b not really gzip")
    assert cli(*execute_args(RUN_DATE, 0)).returncode == 65
    assert cli(*execute_args(RUN_DATE, 0)).returncode == 65

    table = cli("status", "--run-id", RUN)
    assert table.returncode == 0, table.stderr
    (row,) = [line.split() for line in table.stdout.splitlines() if line.split()[:1] == ["0"]]
    assert row[1:3] == ["failed", "2"]  # status, tries
    (why,) = [line for line in table.stdout.splitlines() if "after 2 attempts" in line]
    assert why.startswith("  chunk 0 failed after 2 attempts: exit 65: manifest s3://")
    assert "sha256" in why

    shown = json.loads(cli("status", "--run-id", RUN, "--json").stdout)
    (chunk,) = shown["chunks"]
    assert (chunk["status"], chunk["attempts"]) == ("failed", 2)
    assert chunk["last_error"].startswith("exit 65: manifest s3://")
    assert "sha256" in chunk["last_error"]
    assert scalar(db, "SELECT count(*) FROM plan_executions") == 0


def test_executing_a_done_chunk_again_says_nothing_was_purchased_and_how_much_was_done(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(12, symbols=3))
    plan_for_children(cli)
    first = cli(*execute_args(RUN_DATE, 0))
    assert "chunk finished: 12 purchased, 0 skipped, 0 failed" in _messages(first)
    again = cli(*execute_args(RUN_DATE, 0))
    assert again.returncode == 0, again.stderr
    assert "chunk finished: 0 purchased, 12 already done, 0 skipped, 0 failed" in _messages(again)
    assert scalar(db, "SELECT count(*) FROM transactions") == 12


def test_a_pricing_bound_child_logs_its_progress_at_least_every_ten_seconds(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    symbols = 14  # at 60 calls a minute, about 14 s of pricing
    insert_plans(db, many_plans(symbols * 2, symbols=symbols))
    plan_for_children(cli)
    done = cli(*execute_args(RUN_DATE, 0), env={"FINNHUB_CALLS_PER_MINUTE": "60"})
    assert done.returncode == 0, done.stderr
    logged = _logged(done)
    at = {e["message"]: datetime.fromisoformat(e["time"]) for e in logged}
    started = next(t for m, t in at.items() if m.startswith("chunk started"))
    priced = next(t for m, t in at.items() if m.startswith(f"pricing: {symbols}/{symbols}"))
    assert (priced - started).total_seconds() >= 12  # the run really waited on the rate
    progress = [
        (datetime.fromisoformat(e["time"]), e["message"])
        for e in logged
        if e["message"].startswith("pricing: ")
    ]
    assert len(progress) >= 3, progress
    times = [started] + [t for t, _ in progress]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) <= 10, gaps
    # Each says how far, at what pace and how long the rest takes; with the run's fields.
    middle = [m for _, m in progress if f"/{symbols} symbols" in m and "left" in m]
    assert middle, progress
    assert all(e["run_id"] == RUN for e in logged if e["message"].startswith("pricing: "))


def test_dry_run_counts_agree_due_of_which_invalid_and_to_buy(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack
) -> None:
    insert_plans(db, [*many_plans(6, symbols=2), plan(currency="ZZZ", symbol="ODD")])
    done = cli("plan", "--run-date", "2026-11-27", "--dry-run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "dry run XNYS-20261127: 7 plan(s) due, of which 1 invalid (would be skipped); "
        "6 to buy in 2 symbol(s), 1 chunk(s); nothing written"
    )
    assert lines[1].startswith("1 chunk(s): 7 plan(s) ")  # the due plans, as above
    assert lines[2].startswith("pricing: 2 symbols ")  # what the 6 to buy need priced


def _explained(cli: Runner, plan_id: int) -> list[str]:
    done = cli("explain", str(plan_id))
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_explain_says_why_a_plan_below_the_minimum_was_not_charged(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    plan_id = _bad_day(cli, db)["below_minimum"]
    lines = _explained(cli, plan_id)
    assert lines[0] == f"plan {plan_id}  active  user b  MSFT on XNYS (quoted in USD)"
    assert "  schedule: monthly, anchored on start_date 2026-10-27" in lines
    assert "  each run: 1.0000 USD, fee 0.0000, whole shares only" in lines
    # The schedule moved on: Dec 27 is a Sunday.
    assert any(line.startswith("  next date: 2026-12-28 (") for line in lines)
    assert "    nominal 2026-12-27 is a Sunday (weekend) -> rolled to 2026-12-28" in lines
    assert (
        f"    2026-11-27  skipped   amount_below_minimum  (run {RUN} chunk 0, 1 attempt)" in lines
    )
    assert any(line.strip().startswith("the amount less fee buys less than") for line in lines)


def test_explain_says_why_a_plan_without_a_price_was_not_charged_and_stays_due(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    plan_id = _bad_day(cli, db)["no_price"]
    lines = _explained(cli, plan_id)
    assert lines[0] == f"plan {plan_id}  active  user c  NOSUCH on XNYS (quoted in USD)"
    assert any(line.startswith("  next date: 2026-11-27 (due now") for line in lines)
    assert "    nominal 2026-11-27 is a market day on XNYS: no roll" in lines
    assert f"    2026-11-27  failed    price_unavailable  (run {RUN} chunk 0, 1 attempt)" in lines
    assert any("no provider had a usable price" in line for line in lines)


def test_explain_names_what_is_wrong_with_an_invalid_plan(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    plan_id = _bad_day(cli, db)["invalid"]
    lines = _explained(cli, plan_id)
    assert "  invalid: unknown currency 'ZZZ'" in lines
    assert lines[lines.index("  invalid: unknown currency 'ZZZ'") + 1] == (
        "  next date: 2026-11-27, but the row is invalid (unknown currency 'ZZZ'): every run "
        "skips it until the app fixes the row"
    )
    assert (
        f"    2026-11-27  skipped   invalid_plan: unknown currency 'ZZZ'  (run {RUN}, 1 attempt)"
        in lines
    )
    shown = json.loads(cli("explain", str(plan_id), "--json").stdout)
    assert shown["invalid"] == "unknown currency 'ZZZ'"
    assert [e["status"] for e in shown["executions"]] == ["skipped"]


def test_explain_shows_what_a_purchase_bought(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    plan_id = _bad_day(cli, db)["bought"]
    lines = _explained(cli, plan_id)
    price = market.price_of("AAPL")
    (bought,) = [line for line in lines if "  purchased " in line]
    assert f"at {price} USD for 100.0000 USD (fee 0.0000), traded 2026-11-27" in bought
    assert "  1 run(s) completed, no end_date; version 1, updated " in "\n".join(lines)


def test_explain_of_an_unknown_plan_exits_78_with_one_line(
    cli: Runner, db: psycopg2.extensions.connection
) -> None:
    for plan_id in ("424242", "-3", str(2**64)):
        done = cli("explain", plan_id)
        assert done.returncode == 78, done.stderr
        assert done.stderr.count("\n") == 1 and f"no plan {plan_id}" in done.stderr
        assert done.stdout == ""
