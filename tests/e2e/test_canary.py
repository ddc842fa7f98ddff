"""The smoke test's canary through the CLI: `plan --canary` checks the Batch API a run
needs, writes a run with one empty chunk and submits its executor and finalizer; the
executor checks every provider key and fetches one quote and one FX rate through the
providers' chain; the finalizer writes the report and deletes the run's rows."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg2.extensions
import pytest

from common.adapters.batch import JobWatch
from common.domain.errors import JobFailed
from common.domain.run_key import RunKey, RunLocation
from devkit.batch.engine import Job
from devkit.batch.local import PLANNER, LocalBatch
from devkit.stubs.market_server import StubMarketServer
from ops.canary import run_canary
from tests.conftest import AwsStack
from tests.e2e.conftest import Runner
from tests.factories import insert_plans, many_plans, rows, scalar
from tests.runs import child_env

SATURDAY = "2026-11-28"
RUN = "XNYS-20261128"
PREFIX = f"recurring-investments/XNYS/{SATURDAY}/{RUN}"


def _batch_env(aws: AwsStack) -> dict[str, str]:
    return {
        **aws.env,
        "BATCH_JOB_QUEUE": aws.queue,
        "EXECUTOR_JOB_DEFINITION": aws.executor_definition,
        "FINALIZER_JOB_DEFINITION": aws.finalizer_definition,
        "AWS_BATCH_JOB_ID": "planner-job-1",  # as inside Batch: it tags the canary's jobs
        "DATABASE_SSLMODE": "disable",  # inside Batch TLS would be verify-full
    }


def test_the_canary_exercises_every_stage_buys_nothing_and_leaves_no_rows(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
) -> None:
    insert_plans(db, many_plans(5, symbols=3))  # due plans that a canary must not touch
    planned = cli("plan", "--canary", "--run-date", SATURDAY, env=_batch_env(aws))
    assert planned.returncode == 0, planned.stderr
    jobs = aws.batch().list_jobs(
        jobQueue=aws.queue, filters=[{"name": "JOB_NAME", "values": ["worthy-*"]}]
    )["jobSummaryList"]
    assert sorted(j["jobName"] for j in jobs) == [
        f"worthy-execute-{RUN}-canary-planner-job-1",
        f"worthy-finalize-{RUN}-canary-planner-job-1",
    ]
    manifest = json.loads(aws.objects()[f"{PREFIX}/run.json"])
    assert (manifest["item_count"], manifest["chunk_count"]) == (0, 1)
    assert rows(db, "SELECT status, detail FROM batch_runs") == [("submitted", "canary")]

    # What the two jobs run (moto's Batch runs no containers).
    executed = cli("execute", "--run-id", RUN, env={**aws.env, "CHUNK_INDEX": "0"})
    assert executed.returncode == 0, executed.stderr
    assert "canary: every provider key is set" in executed.stdout
    finalized = cli("finalize", "--run-id", RUN, env=aws.env)
    assert finalized.returncode == 0, finalized.stderr

    report = json.loads(aws.objects()[f"{PREFIX}/report.json"])
    assert report["status"] == "succeeded"
    assert report["outcomes"] == {"purchased": 0, "skipped": 0, "failed": 0}
    assert f"{PREFIX}/results/00000.json" in aws.object_keys()
    # The network proof: one quote and one FX rate, through the providers' stub.
    assert market.calls() == 2, market.call_counts()
    for table in ("batch_runs", "batch_chunks", "plan_executions", "transactions", "run_quotes"):
        assert scalar(db, f"SELECT count(*) FROM {table}") == 0, table


def test_the_canary_executor_refuses_to_run_without_every_provider_key(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
) -> None:
    assert cli("plan", "--canary", "--run-date", SATURDAY, env=_batch_env(aws)).returncode == 0
    done = cli("execute", "--run-id", RUN, env={**aws.env, "EXCHANGE_RATE_API_KEY": ""})
    assert done.returncode == 78, done.stderr
    assert "EXCHANGE_RATE_API_KEY: missing (the canary checks all)" in done.stderr


def test_a_canary_on_a_weekday_is_refused(cli: Runner, aws: AwsStack) -> None:
    done = cli("plan", "--canary", "--run-date", "2026-11-27", env=_batch_env(aws))
    assert done.returncode == 78
    assert "2026-11-27 is a weekday; a canary runs on a Saturday or Sunday" in done.stderr


def test_a_second_canary_for_the_same_day_starts_afresh(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack
) -> None:
    first = cli("plan", "--canary", "--run-date", SATURDAY, env=_batch_env(aws))
    second = cli(
        "plan", "--canary", "--run-date", SATURDAY,
        env={**_batch_env(aws), "AWS_BATCH_JOB_ID": "planner-job-2"},
    )  # fmt: skip
    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    assert scalar(db, "SELECT count(*) FROM batch_runs") == 1
    names = [
        j["jobName"]
        for j in aws.batch().list_jobs(
            jobQueue=aws.queue, filters=[{"name": "JOB_NAME", "values": ["worthy-finalize-*"]}]
        )["jobSummaryList"]
    ]
    assert sorted(names) == [
        f"worthy-finalize-{RUN}-canary-planner-job-1",
        f"worthy-finalize-{RUN}-canary-planner-job-2",
    ]


def test_the_cli_sends_both_canary_commands_to_the_canary(cli: Runner, aws: AwsStack) -> None:
    # Each answer below is the canary's own (planner/canary.py, ops/canary.py), given
    # before anything is planned or submitted.
    env = {**_batch_env(aws), "PLANNER_JOB_DEFINITION": aws.executor_definition}
    dry = cli("plan", "--canary", "--dry-run", "--run-date", SATURDAY, env=env)
    assert dry.returncode == 78
    assert "--canary: cannot be combined with --dry-run" in dry.stderr
    unfollowed = cli("submit", "--canary", "--run-date", SATURDAY, env=env)
    assert unfollowed.returncode == 78
    assert "--canary: needs --wait" in unfollowed.stderr
    weekday = cli("submit", "--canary", "--run-date", "2026-11-27", "--wait", env=env)
    assert weekday.returncode == 78
    assert "2026-11-27 is a weekday; a canary runs on a weekend" in weekday.stderr
    assert aws.batch().list_jobs(jobQueue=aws.queue)["jobSummaryList"] == []


class CanaryJobsRunOnSubmit:
    """moto's Batch (without Docker) runs no container and marks jobs SUCCEEDED: run what
    the canary's three jobs would run, through the CLI against the same moto and database,
    when its planner job is submitted (the Batch client itself is moto's)."""

    def __init__(self, batch: Any, cli: Runner, env: dict[str, str]) -> None:
        self._batch, self._cli, self._env = batch, cli, env

    def submit_job(self, **request: Any) -> Any:
        response = self._batch.submit_job(**request)
        command = request["containerOverrides"]["command"]
        job_env = {**self._env, "AWS_BATCH_JOB_ID": response["jobId"]}
        for argv in (command, ["execute", "--run-id", RUN], ["finalize", "--run-id", RUN]):
            done = self._cli(*argv, env=job_env)
            assert done.returncode == 0, done.stderr
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)


def test_submit_canary_follows_the_jobs_checks_the_report_and_deletes_every_version(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
) -> None:
    s3 = aws.s3()
    s3.put_bucket_versioning(Bucket=aws.bucket, VersioningConfiguration={"Status": "Enabled"})
    keep = "recurring-investments/XNYS/2026-11-27/keep.json"
    s3.put_object(Bucket=aws.bucket, Key=keep, Body=b"")
    batch = CanaryJobsRunOnSubmit(aws.batch(), cli, _batch_env(aws))
    out = io.StringIO()
    report = run_canary(
        JobWatch(batch, aws.client("logs"), out, poll=0.2), s3,
        queue=aws.queue, definition=aws.executor_definition,
        where=RunLocation.for_run(aws.bucket, "recurring-investments",
                                  RunKey("XNYS", date(2026, 11, 28))),
        market="XNYS", run_date=date(2026, 11, 28), timeout=60,
    )  # fmt: skip
    assert report["run_id"] == RUN and report["status"] == "succeeded"
    text = out.getvalue()
    assert "following the canary's finalizer" in text
    assert f"canary {RUN} succeeded" in text
    versions = s3.list_object_versions(Bucket=aws.bucket)
    left = {v["Key"] for v in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]}
    assert left == {keep}, "only the canary's files go"
    assert scalar(db, "SELECT count(*) FROM batch_runs") == 0


def test_a_canary_whose_planner_fails_still_deletes_its_files(aws: AwsStack) -> None:
    s3 = aws.s3()
    where = RunLocation.for_run(
        aws.bucket, "recurring-investments", RunKey("XNYS", date(2026, 11, 28))
    )
    s3.put_object(Bucket=aws.bucket, Key=where.manifest_uri.split("/", 3)[3], Body=b"{}")
    out = io.StringIO()
    with pytest.raises(JobFailed, match="no finalizer"):
        run_canary(
            JobWatch(aws.batch(), aws.client("logs"), out, poll=0.2), s3,
            queue=aws.queue, definition=aws.executor_definition, where=where,
            market="XNYS", run_date=date(2026, 11, 28), timeout=60,
        )  # fmt: skip
    assert aws.object_keys() == []
    assert "deleted 1 object version(s)" in out.getvalue()


# -- the smoke test on the local Batch emulator: every job runs, as in AWS ------------------


@pytest.fixture
def stack(
    tmp_path: Path, database_dsn: str, aws: AwsStack, market: StubMarketServer
) -> Iterator[LocalBatch]:
    """The stack's jobs on the emulator; children reach moto, the database and the stub
    providers (the `market` fixture's variables) unless a test points them elsewhere."""
    env = child_env(database_dsn, **aws.env, **market.environment())
    with LocalBatch(log_dir=tmp_path, slots=2, base_env=env, with_rules=False) as batch:
        yield batch


def _closed_port() -> str:
    """A loopback URL nothing listens on: a connection there is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _smoke(batch: LocalBatch, aws: AwsStack, out: io.StringIO) -> dict[str, Any]:
    """`submit --canary --wait` against the emulator: submit the planner job, follow all."""
    return run_canary(
        JobWatch(batch.client(), aws.client("logs"), out, poll=0.1), aws.s3(),
        queue=batch.emulator.queue_arn, definition=PLANNER,
        where=RunLocation.for_run(aws.bucket, "recurring-investments",
                                  RunKey("XNYS", date(2026, 11, 28))),
        market="XNYS", run_date=date(2026, 11, 28), timeout=240,
    )  # fmt: skip


def _job(batch: LocalBatch, kind: str) -> Job:
    return next(j for j in batch.emulator.jobs() if j.name.startswith(f"worthy-{kind}-"))


def _log(batch: LocalBatch, job: Job, tmp_path: Path) -> str:
    return (tmp_path / f"{job.label}.log").read_text()


def test_the_canary_on_the_emulator_reaches_batch_and_the_providers_and_buys_nothing(
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    stack: LocalBatch,
) -> None:
    insert_plans(db, many_plans(4, symbols=2))  # due plans the canary must not touch
    out = io.StringIO()
    report = _smoke(stack, aws, out)
    assert report["status"] == "succeeded", out.getvalue()
    assert "following the canary's executor" in out.getvalue()
    # One quote and one FX rate, through the same chain and quotas as a real child.
    assert market.calls() == 2, market.call_counts()
    assert {j.status for j in stack.emulator.jobs()} == {"SUCCEEDED"}
    assert scalar(db, "SELECT count(*) FROM batch_runs") == 0
    assert scalar(db, "SELECT count(*) FROM transactions") == 0
    # The calls were counted against the providers' shared quotas, like any other.
    assert scalar(db, "SELECT count(*) FROM provider_limits") >= 1


def test_the_canary_fails_naming_the_provider_it_cannot_reach(
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    stack: LocalBatch,
    tmp_path: Path,
) -> None:
    # A VPC without egress: every provider's host refuses the connection.
    nowhere = _closed_port()
    stack.emulator.extend_environment(
        {
            "FINNHUB_BASE_URL": f"{nowhere}/api/v1",
            "ALPHA_VANTAGE_BASE_URL": nowhere,
            "EXCHANGE_RATE_BASE_URL": f"{nowhere}/v6",
        }
    )
    out = io.StringIO()
    with pytest.raises(JobFailed):
        _smoke(stack, aws, out)
    executor = _job(stack, "execute")
    assert executor.status == "FAILED"
    # 78: not retried (the network will not fix itself between attempts).
    assert [a.exit_code for a in executor.attempts] == [78]
    said = _log(stack, executor, tmp_path)
    assert (
        "canary: price providers unreachable: finnhub: finnhub SPY: ConnectionError: "
        f"GET {nowhere}/api/v1/quote?symbol=SPY (attempts: 3); alphavantage: "
    ) in said
    assert "check the VPC's NAT gateway or VPC endpoints" in said
    assert market.calls() == 0
    assert aws.object_keys() == [], "the smoke test deletes the canary's files"


def test_the_canary_fails_naming_batch_when_its_endpoint_is_unreachable(
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    stack: LocalBatch,
    tmp_path: Path,
) -> None:
    # The planner job runs, but from where it runs Batch's API cannot be reached.
    nowhere = _closed_port()
    stack.emulator.extend_environment({"AWS_ENDPOINT_URL_BATCH": nowhere})
    out = io.StringIO()
    with pytest.raises(JobFailed):
        _smoke(stack, aws, out)
    planner = _job(stack, "canary")
    assert [a.exit_code for a in planner.attempts] == [78]
    said = _log(stack, planner, tmp_path)
    assert "canary: AWS Batch unreachable: " in said
    assert f'Could not connect to the endpoint URL: "{nowhere}/v1/describejobqueues"' in said
    assert [j.name for j in stack.emulator.jobs()] == [planner.name], "nothing else submitted"
    assert scalar(db, "SELECT count(*) FROM batch_runs") == 0, "checked before any write"
