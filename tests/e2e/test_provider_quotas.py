"""Provider quotas across children: one pace per API key for all of them, one daily budget.

Children are real `worthy-batch execute` processes started together; the
stub enforces the providers' limits per API key as the providers do, and
its call log is what a provider would have seen.
"""

from __future__ import annotations

from datetime import date

import psycopg2.extensions

from devkit.stubs.market_server import StubMarketServer
from tests.conftest import AwsStack
from tests.e2e.conftest import Runner, plan_for_children, run_together
from tests.factories import insert_plans, many_plans, plan, scalar
from tests.pacing_checks import JITTER_SECONDS, ahead_of_pace, most_in_a_minute
from tests.runs import child_env, execute_args, run_report

RUN = "XNYS-20261127"
RUN_DATE = date(2026, 11, 27)
PER_MINUTE = 240  # 60 symbols at 240 a minute: a 15-second floor
SYMBOLS = 60


def test_three_children_keep_to_one_limit_per_key_and_buy_every_plan(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    database_dsn: str,
) -> None:
    # Given 60 symbols in three chunks (one symbol's plans also need JPY converted), and
    # a provider that refuses a key's calls past 240 in any rolling minute
    plans = many_plans(2 * SYMBOLS, symbols=SYMBOLS)
    yen = [plan(user_id=f"j{i}", symbol="S0000", currency="JPY") for i in range(2)]
    insert_plans(db, [*plans, *yen])
    plan_for_children(cli, chunk_size=42)
    assert scalar(db, "SELECT chunk_count FROM batch_runs") == 3
    market.set_rate_limit("finnhub", PER_MINUTE)

    # When three children price at once, told the account's limit
    env = child_env(database_dsn, FINNHUB_CALLS_PER_MINUTE=str(PER_MINUTE))
    assert run_together([execute_args(RUN_DATE, i) for i in range(3)], env) == [0, 0, 0]

    # Then nothing was refused and every plan was bought, at one call per symbol and base
    assert market.faults_served("finnhub", "http_429") == 0
    assert scalar(db, "SELECT count(*) FROM plan_executions WHERE status = 'purchased'") == 122
    assert (market.calls("finnhub"), market.calls("exchangerate")) == (SYMBOLS, 1)
    # and the provider saw one pace, never faster than the limit over any stretch,
    arrivals = market.calls_log.times("finnhub")
    assert ahead_of_pace(arrivals, PER_MINUTE) <= JITTER_SECONDS
    assert most_in_a_minute(arrivals) <= PER_MINUTE
    # in about the time the limit allows (the floor: calls / limit).
    floor = SYMBOLS * 60 / PER_MINUTE
    took = max(arrivals) - min(arrivals)
    print(f"\npricing: {SYMBOLS} calls in {took:.1f} s; floor {floor:.1f} s; {took / floor:.2f}x")
    assert took <= 1.2 * floor


def test_a_daily_budget_holds_across_children_and_retries_and_a_new_day_is_fresh(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    database_dsn: str,
) -> None:
    # Given Finnhub down, and 5 Alpha Vantage calls a day for the key (the stub enforces it too)
    insert_plans(db, many_plans(24, symbols=12))
    plan_for_children(cli, chunk_size=8)
    assert scalar(db, "SELECT chunk_count FROM batch_runs") == 3
    market.set_fault("finnhub", "*", "http_500")
    market.set_limits("alphavantage", per_minute=None, per_day=5)
    env = child_env(
        database_dsn, ALPHA_VANTAGE_CALLS_PER_DAY="5", ALPHA_VANTAGE_CALLS_PER_MINUTE="600"
    )

    # When three children run at once, and those left with provider errors are retried twice
    codes = run_together([execute_args(RUN_DATE, i) for i in range(3)], env)
    for _ in range(2):
        failed = [i for i, code in enumerate(codes) if code == 75]
        assert set(codes) <= {0, 75}
        codes = [0] * 3
        retried = run_together([execute_args(RUN_DATE, i) for i in failed], env)
        for index, code in zip(failed, retried, strict=True):
            codes[index] = code
    assert cli("finalize", "--run-id", RUN).returncode == 0

    # Then exactly five fallback calls were made, and the rest are quota_exhausted
    report = run_report(aws)
    assert market.calls("alphavantage") == 5
    assert market.faults_served("alphavantage", "information") == 0
    assert report["quota_exhausted"] == {"alphavantage": 12 - 5}
    assert report["outcomes"] == {"purchased": 10, "skipped": 0, "failed": 14}
    assert report["reasons"] == {"provider_error": 14}  # Finnhub did not answer: retry later

    # When the day turns (the counted calls become yesterday's), the budget is fresh
    with db.cursor() as cur:
        cur.execute("UPDATE provider_daily_calls SET day = day - 1")
    market.set_limits("alphavantage", per_minute=None, per_day=None)  # the provider's day too
    assert cli("redrive", "--run-id", RUN, "--submitter", "local", env=env).returncode == 0
    assert market.calls("alphavantage") == 10
