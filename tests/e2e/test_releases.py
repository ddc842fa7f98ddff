"""One release per run: a deploy in the middle of a run does not mix releases.

A deploy registers new job definition revisions; SubmitJob with a name and no
revision uses "the latest active revision" (API_SubmitJob.html, jobDefinition:
"This value can be one of definition-name, definition-name:revision, or the
Amazon Resource Name (ARN) for the job definition, with or without the
revision ... If the revision is not specified, then the latest active revision
is used"). Here the next release's executor and finalizer cannot run this run
(they exit 78), so a job of the wrong release shows as a failed run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg2.extensions
import pytest

from devkit.batch.local import EXECUTOR, FINALIZER, LocalBatch
from devkit.stubs.market_server import StubMarketServer
from tests.conftest import AwsStack
from tests.e2e.conftest import Runner
from tests.factories import insert_plans, many_plans, rows, scalar
from tests.runs import child_env

RUN = "XNYS-20261127"
DAY = "2026-11-27"


@pytest.fixture
def batch(tmp_path: Path, database_dsn: str, aws: AwsStack) -> Iterator[LocalBatch]:
    env = child_env(database_dsn, **aws.env)
    with LocalBatch(log_dir=tmp_path, slots=2, base_env=env, with_rules=False) as batch:
        yield batch


def deploy_next_release(batch: LocalBatch) -> None:
    """Register revision 2 of the executor and finalizer: a release that cannot run
    this run (its executor asks for a chunk the run does not have; its finalizer for a
    run that does not exist), as the next release's readers reject an older run.json."""
    emulator = batch.emulator
    executor, finalizer = emulator.definition(EXECUTOR), emulator.definition(FINALIZER)
    assert (executor.revision, finalizer.revision) == (1, 1)
    emulator.register(replace(executor, command=("execute", "--chunk-index", "9999")))
    emulator.register(replace(finalizer, command=("finalize", "--run-id", "XNYS-19990101")))
    assert emulator.definition(EXECUTOR).revision == 2, "a name alone now means revision 2"


def revisions_run(batch: LocalBatch) -> set[str]:
    return {f"{j.definition.name}:{j.definition.revision}" for j in batch.emulator.jobs()}


def test_a_planner_submits_by_its_own_releases_revisions_after_the_next_is_registered(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    batch: LocalBatch,
) -> None:
    insert_plans(db, many_plans(6, symbols=3))
    # The template gives the planner its release's revision ARNs (!Ref of the job
    # definitions); then the next release is deployed before the planner submits.
    ours = {
        "EXECUTOR_JOB_DEFINITION": batch.emulator.definition(EXECUTOR).arn,
        "FINALIZER_JOB_DEFINITION": batch.emulator.definition(FINALIZER).arn,
    }
    deploy_next_release(batch)
    env = {**aws.env, **batch.environment(), **ours, "CHUNK_SIZE": "2"}
    done = cli("plan", "--run-date", DAY, "--submitter", "batch", env=env)
    assert done.returncode == 0, done.stderr
    assert batch.emulator.wait(timeout=240), batch.graph()

    assert revisions_run(batch) == {f"{EXECUTOR}:1", f"{FINALIZER}:1"}, batch.graph()
    assert scalar(db, "SELECT status FROM batch_runs") == "succeeded", batch.graph()
    assert scalar(db, "SELECT count(*) FROM transactions") == 6
    assert rows(db, "SELECT executor_job_definition, finalizer_job_definition FROM batch_runs") == [
        (ours["EXECUTOR_JOB_DEFINITION"], ours["FINALIZER_JOB_DEFINITION"])
    ]


def test_a_redrive_after_a_deploy_runs_the_release_that_planned_the_run(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    batch: LocalBatch,
) -> None:
    insert_plans(db, many_plans(6, symbols=3))
    # One symbol no provider can price today: its chunk ends failed (provider_error).
    for provider in ("finnhub", "alphavantage"):
        market.set_fault(provider, "S0001", "http_500")
    env = {**aws.env, **batch.environment(), "CHUNK_SIZE": "2"}
    planned = cli("plan", "--run-date", DAY, "--submitter", "batch", env=env)
    assert planned.returncode == 0, planned.stderr
    assert batch.emulator.wait(timeout=240), batch.graph()
    assert scalar(db, "SELECT status FROM batch_runs") == "partial", batch.graph()
    # The planner named the definitions without revision: it pinned what they meant then.
    pinned = rows(db, "SELECT executor_job_definition, finalizer_job_definition FROM batch_runs")
    assert pinned == [
        (batch.emulator.definition(EXECUTOR).arn, batch.emulator.definition(FINALIZER).arn)
    ]
    assert pinned[0][0].endswith(f"job-definition/{EXECUTOR}:1")

    deploy_next_release(batch)
    market.clear_faults()
    redriven = cli("redrive", "--run-id", RUN, "--submitter", "batch", env=env)
    assert redriven.returncode == 0, redriven.stderr
    assert batch.emulator.wait(timeout=240), batch.graph()

    assert revisions_run(batch) == {f"{EXECUTOR}:1", f"{FINALIZER}:1"}, batch.graph()
    assert scalar(db, "SELECT status FROM batch_runs") == "succeeded", batch.graph()
    assert scalar(db, "SELECT count(*) FROM transactions") == 6


def test_a_job_definition_that_does_not_exist_stops_the_planner_before_it_writes(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, idle_batch: LocalBatch
) -> None:
    insert_plans(db, many_plans(4, symbols=2))
    env = {**aws.env, **idle_batch.environment(), "EXECUTOR_JOB_DEFINITION": f"{EXECUTOR}:7"}
    done = cli("plan", "--run-date", DAY, "--submitter", "batch", env=env)
    assert done.returncode == 78, done.stderr
    assert f"EXECUTOR_JOB_DEFINITION: no ACTIVE job definition {EXECUTOR}:7" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert scalar(db, "SELECT count(*) FROM batch_runs") == 0
    assert aws.object_keys() == []
    assert idle_batch.emulator.jobs() == []
