"""Bad days under AWS Batch's rules, through the CLI on the local Batch emulator.

The emulator applies Batch's documented semantics (an array fails when a child
fails, a job whose dependency failed fails without running, at most 20
dependencies, retries by the job definition's evaluateOnExit) with the job
definitions and EventBridge rules of infra/template.yaml.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg2.extensions
import pytest
import yaml

from common.adapters import aws as aws_clients
from common.adapters.db import connect
from common.adapters.manifest_store import ManifestStore
from common.adapters.store.runs import RunRepository
from common.domain.errors import ConfigError
from devkit.batch.local import LocalBatch
from devkit.stubs.market_server import StubMarketServer
from devkit.template import load_template
from ops.redrive import redrive_run
from tests.conftest import AwsStack
from tests.e2e.conftest import Runner
from tests.factories import insert_plans, plan, rows, scalar
from tests.runs import child_env, run_report

RUN = "XNYS-20261127"
DAY = "2026-11-27"


def _symbols(count: int) -> list[str]:
    return [f"S{i:04d}" for i in range(count)]


def test_a_day_where_22_of_24_chunks_keep_failing_ends_partial_then_one_redrive_finishes_it(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    symbols = _symbols(24)
    insert_plans(db, [plan(symbol=s, user_id=f"u{i}-{s}") for s in symbols for i in range(2)])
    failing = symbols[2:]
    for symbol in failing:
        for provider in ("finnhub", "alphavantage"):
            market.set_fault(provider, symbol, "http_500")
    env = {"CHUNK_SIZE": "2", "LOCAL_PARALLELISM": "2"}

    done = cli("plan", "--run-date", DAY, "--submitter", "local", env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    # Batch played its rules: every failing child tried three times (the job definition's
    # attempts), recorded its chunk failed on the last one, and exited 0, so the array
    # succeeded and its dependent finalizer ran.
    assert "worthy-execute-XNYS-20261127" in done.stdout and "array of 24" in done.stdout
    assert done.stdout.count("3 attempt(s), exit 75, 75, 0") == 22
    assert scalar(db, "SELECT status FROM batch_runs") == "partial"
    report = run_report(aws)
    assert report["status"] == "partial"
    assert report["chunks"]["total"] == 24 and report["chunks"]["succeeded"] == 2
    failed_chunks = report["chunks"]["failed"]
    assert len(failed_chunks) == 22
    assert report["reasons"] == {"provider_error": 44}
    assert scalar(db, "SELECT count(*) FROM transactions") == 4  # the two healthy chunks

    market.clear_faults()  # the providers are back
    redriven = cli("redrive", "--run-id", RUN, "--submitter", "local", env=env, timeout=600)
    assert redriven.returncode == 0, redriven.stderr
    # One array job over the 22 failed chunks and one finalizer depending on it alone:
    # no job near Batch's 20-dependency limit.
    graph = [line for line in redriven.stdout.splitlines() if line.startswith("  worthy-")]
    assert [line.split()[0] for line in graph] == [
        "worthy-redrive1-XNYS-20261127",
        "worthy-refinalize1-XNYS-20261127",
    ]
    assert "array of 22" in graph[0] and "after worthy-redrive1-XNYS-20261127" in graph[1]
    assert scalar(db, "SELECT status FROM batch_runs") == "succeeded"
    assert scalar(db, "SELECT redrives FROM batch_runs") == 1
    assert scalar(db, "SELECT count(*) FROM transactions") == 48
    assert (
        scalar(
            db, "SELECT count(*) FROM (SELECT DISTINCT plan_id, scheduled_date FROM transactions) t"
        )
        == 48
    )
    chunk_list = json.loads(next(v for k, v in aws.objects().items() if "/redrives/" in k))
    assert sorted(chunk_list["chunks"]) == sorted(failed_chunks)
    assert run_report(aws)["status"] == "succeeded"
    verified = cli("verify", "--run-id", RUN)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_child_that_fails_for_good_fails_its_array_and_the_stack_still_finalizes_the_run(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, market: StubMarketServer
) -> None:
    insert_plans(db, [plan(symbol=s, user_id=f"u-{s}") for s in _symbols(3)])
    planned = cli("plan", "--run-date", DAY, "--submitter", "none", env={"CHUNK_SIZE": "1"})
    assert planned.returncode == 0, planned.stderr
    s3 = aws.s3()
    key = next(k for k in aws.object_keys() if k.endswith("chunks/00001.jsonl.gz"))
    s3.put_object(Bucket=aws.bucket, Key=key, Body=b"not what run.json signed")

    done = cli("redrive", "--run-id", RUN, "--submitter", "local", timeout=300)
    assert done.returncode == 0, done.stderr
    # Child 1 exits 65 (never retried), so the array fails and Batch fails the finalizer
    # that depends on it without running it; the stack's rule then submits the finalizer.
    assert "worthy-refinalize1-XNYS-20261127" in done.stdout
    assert "FAILED (Dependent Job failed)" in done.stdout
    assert (
        "rule FinalizeAfterFailedExecutorRule: worthy-redrive1-XNYS-20261127 FAILED -> "
        "submitted worthy-batch-finalize-after-failure"
    ) in done.stdout
    assert scalar(db, "SELECT status FROM batch_runs") == "partial"
    report = run_report(aws)
    assert report["status"] == "partial" and report["chunks"]["succeeded"] == 2
    assert report["chunks"]["failed"] + report["chunks"]["pending"] == [1]
    assert scalar(db, "SELECT count(*) FROM transactions") == 2


@pytest.fixture
def plain_batch(tmp_path: Path, database_dsn: str) -> Iterator[LocalBatch]:
    """The stack's job definitions on the emulator, without the stack's EventBridge rules:
    what Batch alone does to jobs."""
    env = child_env(database_dsn)
    with LocalBatch(log_dir=tmp_path, slots=2, base_env=env, with_rules=False) as batch:
        yield batch


def test_a_rerun_of_plan_after_a_failed_submission_submits_anew_instead_of_adopting(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    plain_batch: LocalBatch,
) -> None:
    insert_plans(db, [plan(symbol=s, user_id=f"u-{s}") for s in _symbols(4)])
    env = {**plain_batch.environment(), "CHUNK_SIZE": "2"}
    client = plain_batch.client()
    # A planner job that fails; the executor job the planner submits depends on it.
    planner = client.submit_job(
        jobName="planner",
        jobQueue=plain_batch.emulator.queue_arn,
        jobDefinition="worthy-batch-planner",
        containerOverrides={"command": ["plan", "--market", "XNAS"]},  # exit 78, never retried
    )["jobId"]
    crashed = cli(
        "plan",
        "--run-date",
        DAY,
        "--submitter",
        "batch",
        env={
            **env,
            "AWS_BATCH_JOB_ID": planner,  # as the planner job itself: its executor depends on it
            "DATABASE_SSLMODE": "disable",  # inside Batch TLS is the default; this server has none
            "WORTHY_FAILPOINTS": "planner.after_submit",
        },
    )
    assert crashed.returncode == -signal.SIGKILL
    assert plain_batch.emulator.wait(timeout=60)
    first = {j.name: j.status for j in plain_batch.emulator.jobs() if j.parent_id is None}
    assert first == {
        "planner": "FAILED",
        "worthy-execute-XNYS-20261127": "FAILED",  # its dependency failed: it never ran
        "worthy-finalize-XNYS-20261127": "FAILED",
    }
    assert scalar(db, "SELECT status FROM batch_runs") == "submitting"

    rerun = cli("plan", "--run-date", DAY, "--submitter", "batch", env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert plain_batch.emulator.wait(timeout=120)
    jobs = {j.name: j for j in plain_batch.emulator.jobs() if j.parent_id is None}
    assert jobs["worthy-execute-XNYS-20261127-2"].status == "SUCCEEDED"
    assert jobs["worthy-finalize-XNYS-20261127-2"].status == "SUCCEEDED"
    recorded = rows(db, "SELECT executor_job_id, finalizer_job_id, status FROM batch_runs")
    assert recorded == [
        (
            jobs["worthy-execute-XNYS-20261127-2"].job_id,
            jobs["worthy-finalize-XNYS-20261127-2"].job_id,
            "succeeded",
        )
    ]
    assert scalar(db, "SELECT count(*) FROM transactions") == 4
    submitted = len(plain_batch.emulator.jobs())
    again = cli("plan", "--run-date", DAY, "--submitter", "batch", env=env)
    assert "already complete" in again.stdout
    assert len(plain_batch.emulator.jobs()) == submitted


def test_a_redrive_batch_refuses_says_so_and_leaves_the_redrive_count(
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    cli: Runner,
    market: StubMarketServer,
    database_dsn: str,
    tmp_path: Path,
) -> None:
    insert_plans(db, [plan(symbol=s, user_id=f"u-{s}") for s in _symbols(3)])
    planned = cli("plan", "--run-date", DAY, "--submitter", "none", env={"CHUNK_SIZE": "1"})
    assert planned.returncode == 0, planned.stderr
    # A stack whose finalizer job definition is missing: Batch refuses the finalizer.
    template = load_template()
    del template["Resources"]["FinalizerJobDefinition"]
    broken = tmp_path / "template.yaml"
    broken.write_text(yaml.safe_dump(template))
    for symbol in _symbols(3):  # and the providers are down, so the chunks stay failed
        market.set_fault("finnhub", symbol, "http_500")
        market.set_fault("alphavantage", symbol, "http_500")
    env = child_env(database_dsn)
    conn = connect(database_dsn)
    try:
        with LocalBatch(log_dir=tmp_path, slots=1, base_env=env, template=broken) as batch:
            with pytest.raises(ConfigError) as refused:
                redrive_run(
                    RunRepository(conn),
                    batch.submitter(),
                    RUN,
                    ManifestStore(aws_clients.s3_client()),
                )
            assert batch.emulator.wait(timeout=120)
    finally:
        conn.close()
    message = str(refused.value)
    # A job definition that does not exist is configuration (78), as for `plan`.
    assert refused.value.exit_code == 78
    assert "unknown job definition or queue" in message
    assert "submitting job worthy-refinalize1-XNYS-20261127" in message
    assert "'worthy-batch-finalizer' does not exist" in message
    assert scalar(db, "SELECT redrives FROM batch_runs") == 0  # not accepted: not counted

    # Fixed (the real stack), providers back: the same redrive 1, with its chunk list.
    market.clear_faults()
    done = cli("redrive", "--run-id", RUN, "--submitter", "local", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "worthy-redrive1-XNYS-20261127" in done.stdout
    assert rows(db, "SELECT status, redrives FROM batch_runs") == [("succeeded", 1)]
    assert len([k for k in aws.object_keys() if "/redrives/" in k]) == 1
