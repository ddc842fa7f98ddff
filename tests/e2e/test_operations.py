"""Operator commands end to end: local submitter + finalize, status, redrive, verify, submit."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import psycopg2.extensions
import pytest

from devkit.stubs.market_server import StubMarketServer
from tests.cfn import ROOT
from tests.conftest import AwsStack, MotoServer, provision
from tests.e2e.conftest import Runner
from tests.factories import insert_plans, many_plans, plan, rows, scalar
from tests.runs import run_report

RUN = "XNYS-20261127"


def _plan_locally(cli: Runner, **env: str) -> Any:
    done = cli(
        "plan",
        "--run-date",
        "2026-11-27",
        "--submitter",
        "local",
        env={"CHUNK_SIZE": "10", "LOCAL_PARALLELISM": "2", **env},
    )
    assert done.returncode == 0, done.stderr
    return done


def test_a_local_run_reports_what_the_database_holds_and_a_second_run_changes_nothing(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(
        db,
        [
            *many_plans(40, symbols=8),
            plan(user_id="x", symbol="NOSUCH"),
            plan(user_id="y", amount=Decimal("1"), fractional=False),
            plan(user_id="z", currency="ZZZ"),
        ],
    )
    _plan_locally(cli)
    report = run_report(aws)
    database = dict(
        ((s, r or ""), n)
        for s, r, n in rows(
            db,
            "SELECT status, reason, count(*) FROM plan_executions WHERE chunk_index IS NOT NULL "
            "GROUP BY 1, 2",
        )
    )
    assert report["status"] == "succeeded"
    assert report["outcomes"] == {"purchased": 40, "skipped": 1, "failed": 1}
    assert database == {
        ("purchased", ""): 40,
        ("skipped", "amount_below_minimum"): 1,
        ("failed", "price_unavailable"): 1,
    }
    assert report["reasons"] == {"amount_below_minimum": 1, "price_unavailable": 1}
    assert Decimal(report["invested"]["USD"]) == scalar(db, "SELECT sum(amount) FROM transactions")
    assert report["invalid_plans"] == 1
    assert sum(report["api_calls"].values()) == market.calls()
    assert scalar(db, "SELECT status FROM batch_runs") == "succeeded"

    before = rows(db, "SELECT * FROM transactions ORDER BY id")
    again = _plan_locally(cli)
    assert "already complete" in again.stdout
    assert rows(db, "SELECT * FROM transactions ORDER BY id") == before


def test_a_failed_chunk_then_redrive_ends_succeeded(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(30, symbols=3))
    for provider in ("finnhub", "alphavantage"):
        market.set_fault(provider, "S0001", "http_500")
    _plan_locally(cli)
    assert scalar(db, "SELECT status FROM batch_runs") == "partial"
    assert rows(db, "SELECT status, count(*) FROM batch_chunks GROUP BY 1 ORDER BY 1") == [
        ("failed", 1),
        ("succeeded", 2),
    ]
    assert run_report(aws)["chunks"]["failed"] != []

    status = cli("status", "--run-id", RUN, "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["run"]["status"] == "partial"
    assert [c["status"] for c in shown["chunks"]].count("failed") == 1

    market.clear_faults()
    redriven = cli("redrive", "--run-id", RUN, "--submitter", "local")
    assert redriven.returncode == 0, redriven.stderr
    assert scalar(db, "SELECT status FROM batch_runs") == "succeeded"
    assert scalar(db, "SELECT redrives FROM batch_runs") == 1
    assert scalar(db, "SELECT count(*) FROM transactions") == 30
    report = run_report(aws)
    assert report["status"] == "succeeded" and report["redrives"] == 1
    nothing = cli("redrive", "--run-id", RUN, "--submitter", "local")
    assert "nothing to redrive" in nothing.stdout


def test_status_prints_a_table_of_chunks(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(25, symbols=5))
    _plan_locally(cli)
    done = cli("status", "--run-date", "2026-11-27")
    assert done.returncode == 0, done.stderr
    assert f"run {RUN}  succeeded" in done.stdout
    assert "chunks: 3 succeeded" in done.stdout
    assert done.stdout.count("succeeded") >= 4


def test_verify_passes_on_a_sound_ledger_and_lists_each_violation_on_a_corrupted_one(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(10, symbols=2))
    _plan_locally(cli)
    sound = cli("verify")
    assert sound.returncode == 0, sound.stdout + sound.stderr
    assert "ledger OK" in sound.stdout
    with db.cursor() as cur:
        cur.execute(
            "UPDATE assets SET quantity = quantity + 1 WHERE id = (SELECT min(id) FROM assets)"
        )
        cur.execute(
            "UPDATE recurring_investments SET next_run_date = '2026-11-27' "
            "WHERE id = (SELECT min(id) FROM recurring_investments)"
        )
    broken = cli("verify", "--run-id", RUN)
    assert broken.returncode == 1
    assert "VIOLATION holding differs from its transactions" in broken.stdout
    assert "VIOLATION plan due again on or before a date it was bought for" in broken.stdout
    assert "2 violation(s)" in broken.stderr
    with db.cursor() as cur:  # put it back so the autouse check sees a sound ledger
        cur.execute(
            "UPDATE assets SET quantity = quantity - 1 WHERE id = (SELECT min(id) FROM assets)"
        )
        cur.execute(
            "UPDATE recurring_investments SET next_run_date = '2026-12-28' "
            "WHERE id = (SELECT min(id) FROM recurring_investments)"
        )


def test_finalize_is_safe_to_run_again(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(12, symbols=3))
    _plan_locally(cli)
    first = run_report(aws)
    done = cli("finalize", "--run-id", RUN)
    assert done.returncode == 0, done.stderr
    second = run_report(aws)
    first.pop("finalized_at"), second.pop("finalized_at")
    # The cost counts the finalizer that wrote the report: each measures its own time.
    first_cost, second_cost = first.pop("cost"), second.pop("cost")
    assert first == second
    assert first_cost["jobs"] == second_cost["jobs"]


def test_finalize_on_a_day_with_nothing_due_leaves_it_succeeded(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    # The planner closes such a day itself; an operator's finalize must not fail it.
    _plan_locally(cli)
    assert scalar(db, "SELECT status FROM batch_runs") == "succeeded"
    done = cli("finalize", "--run-id", RUN)
    assert done.returncode == 0, done.stderr
    assert run_report(aws)["status"] == "succeeded"
    assert scalar(db, "SELECT status FROM batch_runs") == "succeeded"


@pytest.mark.parametrize(
    ("moto_env", "code", "status"),
    [({}, 0, "SUCCEEDED"), ({"MOTO_SIMPLE_BATCH_FAIL_AFTER": "0"}, 1, "FAILED")],
)
def test_submit_wait_follows_the_planner_job_to_its_end(
    cli: Runner, moto_env: dict[str, str], code: int, status: str
) -> None:
    # A moto of its own: its Batch without Docker fails jobs when this variable says so.
    server = MotoServer(moto_env)
    try:
        aws = provision(server.endpoint)
        done = cli(
            "submit",
            "--wait",
            "--run-date",
            "2026-11-27",
            env={
                **aws.env,
                "BATCH_JOB_QUEUE": aws.queue,
                "PLANNER_JOB_DEFINITION": aws.executor_definition,
            },
        )
        jobs = aws.batch().list_jobs(
            jobQueue=aws.queue,
            filters=[{"name": "JOB_NAME", "values": ["worthy-plan-XNYS-2026-11-27-*"]}],
        )["jobSummaryList"]
    finally:
        server.stop()
    assert done.returncode == code, done.stderr
    assert "submitted planner job" in done.stdout
    assert status in done.stdout
    assert len(jobs) == 1


def test_local_run_prints_the_report_then_says_already_complete(
    cli: Runner, db: psycopg2.extensions.connection, tmp_path: Any
) -> None:
    env = {"WORTHY_LOCAL_DIR": str(tmp_path)}
    first = cli("local-run", "--date", "2026-11-27", "--plans", "300", env=env, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "== XNYS-20261127: succeeded ==" in first.stdout
    assert "price_unavailable" in first.stdout  # the symbol no provider knows
    assert "invested:" in first.stdout and "JPY" in first.stdout
    saved = json.loads((tmp_path / "runs" / "XNYS-20261127" / "report.json").read_text())
    cost = saved["cost"]
    assert Decimal(cost["vcpu_seconds"]) > 0 and Decimal(cost["gb_seconds"]) > 0
    assert Decimal(cost["estimated_usd"]) > 0
    assert f"cost: {cost['vcpu_seconds']} vCPU-s, {cost['gb_seconds']} GB-s" in first.stdout
    assert scalar(db, "SELECT count(*) FROM transactions WHERE price_source = 'alphavantage'") > 0
    second = cli("local-run", "--date", "2026-11-27", "--plans", "300", env=env, timeout=300)
    assert second.returncode == 0
    assert "already complete" in second.stdout
    closed = cli("local-run", "--date", "2026-11-26", env=env)
    assert closed.returncode == 0 and "closed on 2026-11-26 (Thanksgiving Day)" in closed.stdout


def test_both_stages_run_as_the_least_privileged_database_role(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    database_dsn: str,
) -> None:
    with db.cursor() as cur:
        cur.execute((ROOT / "infra" / "db-grants.sql").read_text("utf-8"))
    insert_plans(
        db,
        [
            *many_plans(20, symbols=4),
            plan(user_id="j", currency="JPY"),
            plan(user_id="bad", currency="ZZZ"),
        ],
    )
    as_batch = psycopg2.extensions.make_dsn(database_dsn, user="worthy_batch")
    for _ in range(2):  # the second time: a complete run, left alone
        _plan_locally(cli, DATABASE_URL=as_batch)
    assert scalar(db, "SELECT status FROM batch_runs") == "succeeded"
    assert scalar(db, "SELECT count(*) FROM transactions") == 21
    again = cli("execute", "--run-id", RUN, "--chunk-index", "0", env={"DATABASE_URL": as_batch})
    assert again.returncode == 0, again.stderr
    assert cli("verify", env={"DATABASE_URL": as_batch}).returncode == 0


def test_redrive_finalizes_a_run_whose_finalizer_never_ran(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, many_plans(8, symbols=2))
    planned = cli("plan", "--run-date", "2026-11-27", "--submitter", "none")
    assert planned.returncode == 0, planned.stderr
    assert cli("execute", "--run-id", RUN, "--chunk-index", "0").returncode == 0
    assert scalar(db, "SELECT status FROM batch_runs") == "submitted"  # no finalizer ran
    done = cli("redrive", "--run-id", RUN, "--submitter", "local")
    assert done.returncode == 0, done.stderr
    assert "finalized it: succeeded" in done.stdout
    assert scalar(db, "SELECT status FROM batch_runs") == "succeeded"
    assert any(k.endswith("report.json") for k in aws.object_keys())
