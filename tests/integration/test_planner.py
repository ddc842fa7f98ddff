"""The planner against a real PostgreSQL and moto (S3 and Batch) over HTTP."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, time
from typing import Any

import psycopg2
import pytest

from common.adapters import aws as aws_clients
from common.adapters.manifest_store import ManifestStore
from common.adapters.submitters.batch import BatchSubmitter
from common.domain.run_key import RunLocation
from planner.service import PlanResult
from tests.conftest import AwsStack
from tests.factories import insert_plans, many_plans, plan, rows, scalar
from tests.marketdata_fakes import NOW, RUN_DATE
from tests.runs import plan_in_process


def _plan_and_submit(
    database_dsn: str,
    aws: AwsStack,
    *,
    chunk_size: int = 500,
    own_job_id: str | None = None,
    run_date: date = RUN_DATE,
) -> PlanResult:
    """Plan through moto's Batch, as the planner inside a Batch job (`own_job_id`) would."""
    submitter = BatchSubmitter(
        aws_clients.batch_client(),
        job_queue=aws.queue,
        executor_definition=aws.executor_definition,
        finalizer_definition=aws.finalizer_definition,
        own_job_id=own_job_id,
    )
    store = ManifestStore(aws_clients.s3_client())
    return plan_in_process(
        database_dsn,
        store,
        aws.bucket,
        run_date,
        chunk_size,
        submitter=submitter,
        # A later run date (a weekend after RUN_DATE) is planned on that day: the
        # planner refuses a date after its today.
        clock=lambda: max(NOW, datetime.combine(run_date, time(15), UTC)),
    )


def _jobs(aws: AwsStack) -> list[dict[str, Any]]:
    batch = aws.batch()
    summaries = batch.list_jobs(jobQueue=aws.queue, filters=[{"name": "JOB_NAME", "values": ["*"]}])
    # Array children show up as "<parent id>:<index>"; the tests look at what was submitted.
    ids = [j["jobId"] for j in summaries["jobSummaryList"] if ":" not in j["jobId"]]
    return (
        sorted(batch.describe_jobs(jobs=ids)["jobs"], key=lambda j: j["createdAt"]) if ids else []
    )


def _env(job: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in job["container"].get("environment", [])}


def test_no_due_plans_submit_no_job(
    db: psycopg2.extensions.connection, database_dsn: str, aws: AwsStack
) -> None:
    insert_plans(db, [plan(next_run_date=date(2026, 11, 30))])  # due next week
    result = _plan_and_submit(database_dsn, aws)
    assert result.status == "succeeded" and result.plans_due == 0
    assert _jobs(aws) == []
    assert scalar(db, "SELECT status FROM batch_runs WHERE run_id = 'XNYS-20261127'") == "succeeded"


def test_one_chunk_is_a_plain_job_with_chunk_index_zero(
    db: psycopg2.extensions.connection, database_dsn: str, aws: AwsStack
) -> None:
    insert_plans(db, many_plans(5))
    result = _plan_and_submit(database_dsn, aws)
    executor, finalizer = _jobs(aws)
    assert "arrayProperties" not in executor or not executor["arrayProperties"].get("size")
    assert _env(executor)["CHUNK_INDEX"] == "0"
    assert _env(executor)["MANIFEST_URI"] == result.manifest_uri
    assert finalizer["dependsOn"] == [{"jobId": executor["jobId"]}]
    assert finalizer["container"]["command"] == ["finalize", "--run-id", "XNYS-20261127"]
    recorded = rows(db, "SELECT executor_job_id, finalizer_job_id, status FROM batch_runs")
    assert recorded == [(executor["jobId"], finalizer["jobId"], "submitted")]


def test_several_chunks_are_one_array_job_sized_to_the_chunk_count(
    db: psycopg2.extensions.connection, database_dsn: str, aws: AwsStack
) -> None:
    insert_plans(db, many_plans(25, symbols=25))
    result = _plan_and_submit(database_dsn, aws, chunk_size=4)
    executor, _ = _jobs(aws)
    assert result.chunk_count == 7  # 25 single-plan symbols, 4 per chunk
    assert executor["arrayProperties"]["size"] == 7
    assert "CHUNK_INDEX" not in _env(executor)
    assert scalar(db, "SELECT count(*) FROM batch_chunks WHERE status = 'pending'") == 7


def test_the_array_limit_caps_children_at_ten_thousand(
    db: psycopg2.extensions.connection, database_dsn: str, aws: AwsStack
) -> None:
    insert_plans(db, many_plans(10_001, symbols=10_001))
    result = _plan_and_submit(database_dsn, aws, chunk_size=1)
    executor, _ = _jobs(aws)
    assert executor["arrayProperties"]["size"] == result.chunk_count <= 10_000
    assert result.plans_due == 10_001


def test_children_depend_on_the_planner_job_inside_batch(
    db: psycopg2.extensions.connection, database_dsn: str, aws: AwsStack
) -> None:
    insert_plans(db, many_plans(3))
    planner_job = aws.batch().submit_job(
        jobName="planner", jobQueue=aws.queue, jobDefinition=aws.executor_definition
    )["jobId"]
    _plan_and_submit(database_dsn, aws, own_job_id=planner_job)
    executor = next(j for j in _jobs(aws) if j["jobName"].startswith("worthy-execute"))
    assert executor["dependsOn"] == [{"jobId": planner_job}]


def test_planning_twice_submits_once(
    db: psycopg2.extensions.connection, database_dsn: str, aws: AwsStack
) -> None:
    insert_plans(db, many_plans(5))
    first = _plan_and_submit(database_dsn, aws)
    second = _plan_and_submit(database_dsn, aws)
    assert len(_jobs(aws)) == 2
    assert "already submitted" in second.message
    assert second.manifest_uri == first.manifest_uri


def test_manifests_hold_every_valid_plan_once_with_amounts_as_strings(
    db: psycopg2.extensions.connection, database_dsn: str, aws: AwsStack
) -> None:
    ids = insert_plans(db, many_plans(12, symbols=3, amount=__import__("decimal").Decimal("10.5")))
    result = _plan_and_submit(database_dsn, aws, chunk_size=4)
    objects = aws.objects()
    manifest = json.loads(objects["recurring-investments/XNYS/2026-11-27/XNYS-20261127/run.json"])
    assert manifest["item_count"] == 12 and manifest["chunk_count"] == result.chunk_count == 3
    lines = [
        json.loads(line)
        for chunk in manifest["chunks"]
        for line in gzip.decompress(objects[chunk["key"]]).splitlines()
    ]
    assert sorted(line["plan_id"] for line in lines) == ids
    assert {line["amount"] for line in lines} == {"10.5000"}
    # Symbol affinity: each chunk holds exactly one of the three 4-plan symbols.
    assert all(chunk["symbols"] == 1 for chunk in manifest["chunks"])


def test_a_symbol_above_the_chunk_size_is_split_and_every_plan_lands_once(
    db: psycopg2.extensions.connection, database_dsn: str, aws: AwsStack
) -> None:
    ids = insert_plans(
        db, [*many_plans(10, symbols=1), *(plan(symbol="OTHR", user_id=f"o{i}") for i in range(3))]
    )
    result = _plan_and_submit(database_dsn, aws, chunk_size=4)
    objects = aws.objects()
    manifest = json.loads(objects["recurring-investments/XNYS/2026-11-27/XNYS-20261127/run.json"])
    chunks = [
        [json.loads(line) for line in gzip.decompress(objects[chunk["key"]]).splitlines()]
        for chunk in manifest["chunks"]
    ]
    assert sorted(line["plan_id"] for chunk in chunks for line in chunk) == sorted(ids)
    assert result.chunk_count == len(chunks) == 4  # 13 plans, at most 4 a chunk
    assert all(len(chunk) <= 4 for chunk in chunks)
    # The 10-plan symbol fills the fewest chunks (3), and OTHR's 3 plans stay together.
    assert sum(1 for chunk in chunks if any(line["symbol"] == "S0000" for line in chunk)) == 3
    assert sum(1 for chunk in chunks if any(line["symbol"] == "OTHR" for line in chunk)) == 1


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"amount": __import__("decimal").Decimal("-5")}, "invalid_plan: amount must be positive"),
        ({"currency": "ZZZ"}, "invalid_plan: unknown currency 'ZZZ'"),
        ({"frequency": "hourly"}, "invalid_plan: unknown frequency 'hourly'"),
        ({"symbol": ""}, "invalid_plan: empty symbol"),
        ({"symbol": "AAPL'; DROP TABLE assets;--"}, "invalid_plan: malformed symbol"),
        ({"exchange": "XXXX"}, "invalid_plan: unsupported exchange 'XXXX'"),
        ({"amount": None}, "invalid_plan: amount is missing or not a number"),
        ({"user_id": None}, "invalid_plan: user_id is missing"),
        ({"fractional": None}, "invalid_plan: fractional is missing"),
        ({"symbol": None}, "invalid_plan: empty symbol"),
        ({"user_id": 'quote" and \\ backslash\ttab'}, None),
    ],
)
def test_an_invalid_row_is_skipped_with_its_reason_and_the_run_goes_on(
    db: psycopg2.extensions.connection,
    database_dsn: str,
    aws: AwsStack,
    bad: dict[str, Any],
    reason: str | None,
) -> None:
    good, odd = insert_plans(db, [plan(), plan(**{"user_id": "user-2", **bad})])
    result = _plan_and_submit(database_dsn, aws)
    if reason is None:  # awkward characters are data, not a reason to skip
        assert result.plans_due == 2
        assert scalar(db, "SELECT count(*) FROM plan_executions") == 0
        return
    assert result.plans_due == 1
    assert rows(db, "SELECT plan_id, status, reason FROM plan_executions") == [
        (odd, "skipped", reason)
    ]
    assert scalar(db, "SELECT invalid_plans FROM batch_runs") == 1
    assert scalar(db, "SELECT count(*) FROM assets") == 0


def test_plans_of_other_markets_paused_or_not_yet_due_are_left_out(
    db: psycopg2.extensions.connection, database_dsn: str, aws: AwsStack
) -> None:
    due, nasdaq = insert_plans(db, [plan(), plan(exchange="XNAS", symbol="MSFT")])
    insert_plans(
        db,
        [
            plan(exchange="XJPX", symbol="7203.T", asset_currency="JPY"),
            plan(status="paused"),
            plan(status="cancelled"),
            plan(next_run_date=date(2026, 11, 30)),
        ],
    )
    result = _plan_and_submit(database_dsn, aws)
    assert result.plans_due == 2
    assert scalar(db, "SELECT count(*) FROM plan_executions") == 0


@pytest.mark.parametrize("closed", [date(2026, 11, 28), date(2026, 11, 26)])
def test_a_closed_market_day_writes_nothing_to_s3_and_records_market_closed(
    db: psycopg2.extensions.connection, database_dsn: str, aws: AwsStack, closed: date
) -> None:
    insert_plans(db, many_plans(3, next_run_date=date(2026, 11, 20)))
    result = _plan_and_submit(database_dsn, aws, run_date=closed)
    assert result.status == "market_closed"
    assert aws.object_keys() == []
    assert _jobs(aws) == []
    assert rows(db, "SELECT status FROM batch_runs") == [("market_closed",)]


def test_a_final_outcome_for_the_scheduled_date_keeps_a_plan_out(
    db: psycopg2.extensions.connection, database_dsn: str, aws: AwsStack
) -> None:
    bought, below, failed = insert_plans(db, many_plans(3))
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO plan_executions (plan_id, scheduled_date, run_id, status, reason) VALUES"
            " (%s, '2026-11-27', 'x', 'skipped', 'amount_below_minimum'),"
            " (%s, '2026-11-27', 'x', 'failed', 'provider_error')",
            (below, failed),
        )
    result = _plan_and_submit(database_dsn, aws)
    assert result.plans_due == 2  # the failed one is due again, the final one is not
    location = RunLocation.from_manifest_uri(result.manifest_uri or "")
    manifest = ManifestStore(aws_clients.s3_client()).load_manifest(location)
    plans = ManifestStore(aws_clients.s3_client()).load_chunk(location, manifest, 0)
    assert sorted(p.plan_id for p in plans) == [bought, failed]
