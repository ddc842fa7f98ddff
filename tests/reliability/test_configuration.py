"""Configuration: every required variable missing, and every setting malformed, in turn.

Each command starts from an environment it would run with, then one thing is
made wrong. It must stop with exit 78 and one line on stderr naming the
variable, before touching anything: no run, no S3 object, no job. The table
runs through `entry.cli.main` in-process (the process edge, without an
interpreter start per case); one case per command also runs the real
console script.
"""

from __future__ import annotations

from datetime import date

import psycopg2.extensions
import pytest

from devkit.stubs.market_server import StubMarketServer
from tests.conftest import SENTINEL_DATABASE_PASSWORD, AwsStack
from tests.e2e.conftest import Runner
from tests.factories import insert_plans, many_plans, scalar
from tests.reliability.conftest import InProcess

DAY = date(2026, 11, 20)
RUN = "XNYS-20261120"
COMMANDS = {
    "plan": ["plan", "--run-date", DAY.isoformat(), "--submitter", "batch"],
    "execute": ["execute", "--run-id", RUN, "--chunk-index", "0"],
    "finalize": ["finalize", "--run-id", RUN],
    "submit": ["submit", "--run-date", DAY.isoformat()],
}
# Malformed in every command: each is parsed at start-up, whoever needs it.
MALFORMED = [
    ("CHUNK_SIZE", "abc"),
    ("CHUNK_SIZE", "0"),
    ("SHARE_DECIMALS", "9"),
    ("SHARE_DECIMALS", "-1"),
    ("MAX_QUOTE_AGE_DAYS", "-1"),
    ("WRITE_BATCH_SIZE", "0"),
    ("DB_CONNECT_ATTEMPTS", "many"),
    ("LOCAL_PARALLELISM", "0"),
    ("HTTP_READ_TIMEOUT", "-2"),
    ("HTTP_CONNECT_TIMEOUT", "soon"),
    ("PROVIDER_MAX_ATTEMPTS", "0"),
    ("FINNHUB_CALLS_PER_MINUTE", "1.5"),
    ("ALPHA_VANTAGE_CALLS_PER_DAY", "-1"),
    ("EXECUTOR_TIMEOUT_SECONDS", "0"),
    ("LOG_FORMAT", "xml"),
    ("DATABASE_URL", "not-a-dsn"),
    ("DATABASE_URL", f"password={SENTINEL_DATABASE_PASSWORD} host"),
    ("DATABASE_URL", f'{{"host": "db", "password": "{SENTINEL_DATABASE_PASSWORD}"}}'),
    ("DATABASE_SSLMODE", "strict"),
    ("FINNHUB_BASE_URL", "ftp://x"),
    ("ALPHA_VANTAGE_BASE_URL", "finnhub.io/api"),
    ("EXCHANGE_RATE_BASE_URL", "http://"),
    ("CHUNK_INDEX", "-1"),
    ("AWS_BATCH_JOB_ARRAY_INDEX", "first"),
]
# Missing, for the commands that need them.
MISSING = [
    ("plan", ["MANIFEST_BUCKET"]),
    ("plan", ["BATCH_JOB_QUEUE"]),
    ("plan", ["EXECUTOR_JOB_DEFINITION"]),
    ("plan", ["FINALIZER_JOB_DEFINITION"]),
    ("execute", ["FINNHUB_API_KEY", "ALPHA_VANTAGE_API_KEY"]),
    # (execute --run-id of a run this database never planned no longer needs MANIFEST_BUCKET:
    # it is an unknown run, 78 naming the known ones; tests/e2e/test_exit_codes.py)
    ("submit", ["BATCH_JOB_QUEUE"]),
    ("submit", ["PLANNER_JOB_DEFINITION"]),
]
Change = dict[str, str | None]  # None: unset the variable
CASES: list[tuple[str, Change, list[str]]] = [
    (command, {name: value}, [name]) for command in COMMANDS for name, value in MALFORMED
] + [(command, dict.fromkeys(names), names) for command, names in MISSING]


@pytest.fixture
def good_env(aws: AwsStack, market: StubMarketServer) -> dict[str, str | None]:
    """What every command needs, besides the database and the stubs' own variables."""
    return {
        "BATCH_JOB_QUEUE": aws.queue,
        "EXECUTOR_JOB_DEFINITION": aws.executor_definition,
        "FINALIZER_JOB_DEFINITION": aws.finalizer_definition,
        "PLANNER_JOB_DEFINITION": aws.executor_definition,
    }


def test_every_command_runs_with_the_good_environment_it_starts_from(
    in_process: InProcess,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    good_env: dict[str, str | None],
) -> None:
    # The baseline: a wrong value below is the only reason a case fails.
    insert_plans(db, many_plans(2, next_run_date=DAY))
    for command in ("plan", "execute", "finalize", "submit"):
        done = in_process(*COMMANDS[command], env=good_env)
        assert done.code == 0, (command, done.err)


def test_each_bad_or_missing_variable_exits_78_naming_it_and_touches_nothing(
    in_process: InProcess,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    good_env: dict[str, str | None],
) -> None:
    # One test for the whole table: the fixtures cost more than a case. Failures are
    # collected and named together.
    failed: dict[str, str] = {}
    for command, change, named in CASES:
        done = in_process(*COMMANDS[command], env={**good_env, **change})
        lines = done.err.strip().splitlines()
        if done.code != 78 or len(lines) != 1 or not all(n in lines[0] for n in named):
            failed[f"{command} {change}"] = f"exit {done.code}: {done.err[:300]!r}"
        elif "Traceback" in done.out:
            failed[f"{command} {change}"] = "a traceback in the log"
    assert failed == {}
    assert len(CASES) == 103
    assert scalar(db, "SELECT count(*) FROM batch_runs") == 0
    assert aws.object_keys() == []
    jobs = aws.batch().list_jobs(
        jobQueue=aws.queue, filters=[{"name": "JOB_NAME", "values": ["*"]}]
    )
    assert jobs["jobSummaryList"] == []


def test_a_missing_database_url_inside_aws_batch_exits_78(
    in_process: InProcess, aws: AwsStack, market: StubMarketServer
) -> None:
    # Outside Batch an embedded server stands in; inside, a missing DSN is a deploy mistake.
    done = in_process(*COMMANDS["execute"], env={"DATABASE_URL": None, "AWS_BATCH_JOB_ID": "j-1"})
    assert done.code == 78
    assert "DATABASE_URL: missing (required inside AWS Batch)" in done.err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_console_script_says_the_same_in_one_line(
    cli: Runner, aws: AwsStack, good_env: dict[str, str | None], command: str
) -> None:
    env = {k: v for k, v in good_env.items() if v is not None}
    done = cli(*COMMANDS[command], env={**env, "SHARE_DECIMALS": "9"})
    assert done.returncode == 78
    assert len(done.stderr.strip().splitlines()) == 1 and "SHARE_DECIMALS" in done.stderr
