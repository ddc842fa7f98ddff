"""`worthy-batch plan` end to end: crashes at each step converge to one submission."""

from __future__ import annotations

import signal
from typing import Any

import psycopg2.extensions
import pytest

from devkit.batch.local import LocalBatch
from tests.conftest import AwsStack
from tests.e2e.conftest import Runner
from tests.factories import insert_plans, many_plans, plan, rows, scalar

TABLES = (
    "recurring_investments",
    "plan_executions",
    "batch_runs",
    "batch_chunks",
    "transactions",
    "assets",
    "run_quotes",
)


def _batch_env(aws: AwsStack, batch: LocalBatch, **extra: str) -> dict[str, str]:
    """S3 in moto; Batch in the emulator (AWS's rules), with no capacity: jobs stay put."""
    return {**aws.env, **batch.environment(), "CHUNK_SIZE": "3", **extra}


def _submitted(batch: LocalBatch) -> list[str]:
    summaries = batch.client().list_jobs(
        jobQueue=batch.emulator.queue_arn, filters=[{"name": "JOB_NAME", "values": ["worthy-*"]}]
    )["jobSummaryList"]
    return sorted(j["jobName"] for j in summaries)


def _table_counts(db: psycopg2.extensions.connection) -> dict[str, Any]:
    return {t: scalar(db, f"SELECT count(*) FROM {t}") for t in TABLES}


def test_plan_submits_through_the_cli(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, idle_batch: LocalBatch
) -> None:
    insert_plans(db, many_plans(7, symbols=7))
    done = cli(
        "plan", "--run-date", "2026-11-27", "--submitter", "batch", env=_batch_env(aws, idle_batch)
    )
    assert done.returncode == 0, done.stderr
    assert _submitted(idle_batch) == [
        "worthy-execute-XNYS-20261127",
        "worthy-finalize-XNYS-20261127",
    ]
    assert scalar(db, "SELECT chunk_count FROM batch_runs") == 3


@pytest.mark.parametrize(
    "step",
    [
        "planner.after_claim",
        "planner.mid_manifest",
        "planner.after_manifests",
        "planner.between_submissions",
        "planner.after_submit",
    ],
)
def test_a_planner_killed_at_any_step_converges_to_one_submission_on_rerun(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    step: str,
    idle_batch: LocalBatch,
) -> None:
    insert_plans(db, many_plans(7, symbols=7))
    env = _batch_env(aws, idle_batch)
    crashed = cli("plan", "--run-date", "2026-11-27", env={**env, "WORTHY_FAILPOINTS": step})
    assert crashed.returncode == -signal.SIGKILL
    rerun = cli("plan", "--run-date", "2026-11-27", env=env)
    again = cli("plan", "--run-date", "2026-11-27", env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert again.returncode == 0, again.stderr
    assert _submitted(idle_batch) == [
        "worthy-execute-XNYS-20261127",
        "worthy-finalize-XNYS-20261127",
    ]
    assert rows(db, "SELECT status, chunk_count, plans_due FROM batch_runs") == [
        ("submitted", 3, 7)
    ]
    keys = aws.object_keys()
    assert len([k for k in keys if "/chunks/" in k]) == 3
    assert len([k for k in keys if k.endswith("run.json")]) == 1


def test_dry_run_leaves_the_database_and_bucket_unchanged(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, idle_batch: LocalBatch
) -> None:
    insert_plans(db, [*many_plans(6, symbols=2), plan(currency="ZZZ")])
    before = (_table_counts(db), aws.objects())
    done = cli("plan", "--run-date", "2026-11-27", "--dry-run", env=_batch_env(aws, idle_batch))
    assert done.returncode == 0, done.stderr
    assert "7 plan(s) due, of which 1 invalid (would be skipped); 6 to buy in 2 symbol(s)" in (
        done.stdout
    )
    assert "S0000" in done.stdout and "300.00 USD" in done.stdout
    assert "invalid_plan: unknown currency 'ZZZ'" in done.stdout
    assert (_table_counts(db), aws.objects()) == before
    assert _submitted(idle_batch) == []


def test_a_closed_day_says_so_and_exits_zero(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, idle_batch: LocalBatch
) -> None:
    done = cli("plan", "--run-date", "2026-11-26", env=_batch_env(aws, idle_batch))
    assert done.returncode == 0, done.stderr
    assert "closed on 2026-11-26 (Thanksgiving Day)" in done.stdout
    assert aws.object_keys() == []


def test_missing_batch_settings_exit_78_naming_each(cli: Runner, aws: AwsStack) -> None:
    done = cli(
        "plan",
        "--run-date",
        "2026-11-27",
        "--submitter",
        "batch",
        env={"BATCH_JOB_QUEUE": "", "EXECUTOR_JOB_DEFINITION": "", "FINALIZER_JOB_DEFINITION": ""},
    )
    assert done.returncode == 78
    line = done.stderr.strip()
    assert "\n" not in line
    for name in ("BATCH_JOB_QUEUE", "EXECUTOR_JOB_DEFINITION", "FINALIZER_JOB_DEFINITION"):
        assert name in line


def test_a_secondary_market_is_refused_with_a_hint(
    cli: Runner, aws: AwsStack, idle_batch: LocalBatch
) -> None:
    done = cli(
        "plan", "--market", "XNAS", "--run-date", "2026-11-27", env=_batch_env(aws, idle_batch)
    )
    assert done.returncode == 78
    assert "use --market XNYS" in done.stderr


def test_dry_run_states_the_pricing_time_and_the_attempt_timeout_or_the_refusal(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, idle_batch: LocalBatch
) -> None:
    insert_plans(db, [*many_plans(240, symbols=120), *many_plans(4, symbols=2, currency="JPY")])
    rates = {"FINNHUB_CALLS_PER_MINUTE": "60", "EXCHANGE_RATE_CALLS_PER_MINUTE": "30"}
    done = cli(
        "plan", "--run-date", "2026-11-27", "--dry-run",
        env=_batch_env(aws, idle_batch, **rates, EXECUTOR_TIMEOUT_SECONDS="3600"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "pricing: 120 symbols at 60/min (finnhub): about 2 min; "
        "1 FX base at 30/min (exchangerate): about 2 s"
    ) in done.stdout
    assert "executor attempt timeout: 3600 s" in done.stdout
    assert "refused" not in done.stdout
    tight = cli(
        "plan", "--run-date", "2026-11-27", "--dry-run",
        env=_batch_env(
            aws, idle_batch, **rates,
            EXECUTOR_TIMEOUT_SECONDS="60", EXECUTOR_MAX_TIMEOUT_SECONDS="120",
        ),
    )  # fmt: skip
    assert "refused: an executor attempt would need about 5 min" in tight.stdout
    assert "EXECUTOR_MAX_TIMEOUT_SECONDS=120" in tight.stdout
    assert "raise FINNHUB_CALLS_PER_MINUTE to at least" in tight.stdout


def test_symbols_a_rerun_has_priced_already_are_not_counted_again(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, idle_batch: LocalBatch
) -> None:
    insert_plans(db, many_plans(10, symbols=10))
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO run_quotes (run_id, kind, key, value, source, quote_time) "
            "SELECT 'XNYS-20261127', 'price', 'S000' || i, 100, 'finnhub', now() "
            "FROM generate_series(0, 3) AS i"
        )
    done = cli("plan", "--run-date", "2026-11-27", "--dry-run", env=_batch_env(aws, idle_batch))
    assert "pricing: 6 symbols at 60/min (finnhub)" in done.stdout


def test_a_day_whose_estimate_cannot_fit_an_attempt_is_refused_and_nothing_is_written(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, idle_batch: LocalBatch
) -> None:
    # 90 symbols at 60/min: 90 s of pricing, a Fargate child's 60 s start, x1.5: ~4 min,
    # past a 200 s ceiling. Batch would stop the attempts and not retry them.
    insert_plans(db, many_plans(90, symbols=90))
    env = _batch_env(
        aws, idle_batch, FINNHUB_CALLS_PER_MINUTE="60", EXECUTOR_TIMEOUT_SECONDS="60",
        EXECUTOR_MAX_TIMEOUT_SECONDS="200",
    )  # fmt: skip
    done = cli("plan", "--run-date", "2026-11-27", "--submitter", "batch", env=env)
    assert done.returncode == 78, done.stderr
    said = done.stderr.strip().splitlines()
    assert len(said) == 1, done.stderr
    assert "cannot plan this day" in said[0] and "EXECUTOR_MAX_TIMEOUT_SECONDS=200" in said[0]
    assert "raise FINNHUB_CALLS_PER_MINUTE to at least 75 (now 60)" in said[0]
    assert "nothing was written" in said[0]
    assert _table_counts(db) == {**_table_counts(db), "batch_runs": 0, "batch_chunks": 0}
    assert scalar(db, "SELECT count(*) FROM plan_executions") == 0
    assert aws.object_keys() == []
    assert _submitted(idle_batch) == []
    # At the rate it names, the same day plans.
    faster = cli(
        "plan", "--run-date", "2026-11-27", "--submitter", "batch",
        env={**env, "FINNHUB_CALLS_PER_MINUTE": "75"},
    )  # fmt: skip
    assert faster.returncode == 0, faster.stderr


def test_the_submitted_executor_jobs_carry_the_timeout_derived_from_the_estimate(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, idle_batch: LocalBatch
) -> None:
    insert_plans(db, many_plans(90, symbols=90))
    env = _batch_env(
        aws, idle_batch, FINNHUB_CALLS_PER_MINUTE="60", EXECUTOR_TIMEOUT_SECONDS="60",
        CHUNK_SIZE="30",
    )  # fmt: skip
    done = cli("plan", "--run-date", "2026-11-27", "--submitter", "batch", env=env)
    assert done.returncode == 0, done.stderr
    # A Fargate child's 60 s start + 90 calls 61/60 s apart (91.5 s) + 30 plans at
    # 2,000 a second, x1.5 margin: 228 s (over EXECUTOR_TIMEOUT_SECONDS, the floor).
    expected = 228
    client = idle_batch.client()
    names = {
        j["jobName"]: j["jobId"]
        for j in client.list_jobs(
            jobQueue=idle_batch.emulator.queue_arn,
            filters=[{"name": "JOB_NAME", "values": ["worthy-*"]}],
        )["jobSummaryList"]
    }
    executor = client.describe_jobs(jobs=[names["worthy-execute-XNYS-20261127"]])["jobs"][0]
    assert executor["timeout"] == {"attemptDurationSeconds": expected}
    assert executor["arrayProperties"]["size"] == 3
    child = client.describe_jobs(jobs=[f"{executor['jobId']}:0"])["jobs"][0]
    assert child["timeout"] == {"attemptDurationSeconds": expected}, "each child's timeout"
    finalizer = client.describe_jobs(jobs=[names["worthy-finalize-XNYS-20261127"]])["jobs"][0]
    assert finalizer["timeout"] == {"attemptDurationSeconds": 900}, "the job definition's"
    assert rows(db, "SELECT executor_timeout_seconds FROM batch_runs") == [(expected,)]
    # Each child knows its attempt's budget (how long it may wait on another's quote).
    told = {e["name"]: e["value"] for e in child["container"]["environment"]}
    assert told["EXECUTOR_TIMEOUT_SECONDS"] == str(expected)


def test_without_chunk_size_the_planner_sizes_chunks_from_the_work_and_says_why(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, idle_batch: LocalBatch
) -> None:
    insert_plans(db, many_plans(40, symbols=8))
    env = {**_batch_env(aws, idle_batch), "CHUNK_SIZE": "", "MAX_CHILDREN": ""}
    dry = cli("plan", "--run-date", "2026-11-27", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    # In AWS a child is a Fargate task: a tiny day is one chunk, one plain job.
    assert "1 chunk(s): 40 plan(s) -> 1 child(ren) of ~40" in dry.stdout
    assert "Fargate task" in dry.stdout
    done = cli("plan", "--run-date", "2026-11-27", env={**env, "MAX_CHILDREN": "3"})
    assert done.returncode == 0, done.stderr
    assert scalar(db, "SELECT chunk_count FROM batch_runs") == 1
    jobs = idle_batch.emulator.jobs()
    assert [(j.name, j.array_size) for j in jobs] == [
        ("worthy-execute-XNYS-20261127", None),
        ("worthy-finalize-XNYS-20261127", None),
    ]
