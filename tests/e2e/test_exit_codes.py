"""Exit codes that mean what they say, one line each, for what a user can get wrong:
AWS and database refusals sorted once (78 configuration, 75 transient), run dates,
run ids and chunk indexes, local-run's configuration errors, Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

import psycopg2.extensions
import pytest

from common.domain.calendar import calendar_for
from devkit.stubs.market_server import StubMarketServer
from entry.cli import build_parser
from tests.conftest import AwsStack
from tests.e2e.conftest import CLI, Runner, plan_for_children
from tests.factories import insert_plans, many_plans, scalar
from tests.runs import child_env

RUN = "XNYS-20261127"


def one_line(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The single stderr line of a command that exited `code`, holding every word."""
    assert done.returncode == code, (done.returncode, done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def today(market: str = "XNYS") -> datetime:
    return datetime.combine(calendar_for(market).today(datetime.now(UTC)), datetime.min.time())


# -- AWS refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bucket", "words"),
    [
        ("nosuchbucket-worthy", ("NoSuchBucket", "check MANIFEST_BUCKET")),
        ("Not_A_Bucket!", ("bucket name", "MANIFEST_BUCKET")),
    ],
)
def test_a_bucket_that_does_not_exist_or_cannot_is_configuration_not_transient(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack, bucket: str, words: tuple[str]
) -> None:
    insert_plans(db, many_plans(3))
    done = cli(
        "plan", "--run-date", "2026-11-27", "--submitter", "none", env={"MANIFEST_BUCKET": bucket}
    )
    one_line(done, 78, "bad configuration", *words)


def test_an_unknown_job_definition_is_configuration_for_plan_and_submit_alike(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack
) -> None:
    insert_plans(db, many_plans(3))
    batch = {
        "BATCH_JOB_QUEUE": aws.queue,
        "EXECUTOR_JOB_DEFINITION": "nosuch-executor",
        "FINALIZER_JOB_DEFINITION": aws.finalizer_definition,
        "PLANNER_JOB_DEFINITION": "nosuch-planner",
    }
    planned = cli("plan", "--run-date", "2026-11-27", "--submitter", "batch", env=batch)
    one_line(planned, 78, "EXECUTOR_JOB_DEFINITION", "nosuch-executor")
    submitted = cli("submit", "--run-date", "2026-11-27", "--wait", env=batch)
    one_line(submitted, 78, "unknown job definition or queue", "nosuch-planner")
    queue = cli("submit", "--run-date", "2026-11-27", env={**batch, "BATCH_JOB_QUEUE": "noq"})
    one_line(queue, 78, "unknown job definition or queue")


# -- local-run: one line, the same code as the other commands -----------------------------


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        ((), {"FINNHUB_CALLS_PER_MINUTE": "abc"}, "FINNHUB_CALLS_PER_MINUTE"),
        ((), {"ALPHA_VANTAGE_CALLS_PER_DAY": "lots"}, "ALPHA_VANTAGE_CALLS_PER_DAY"),
        ((), {"DATABASE_URL": "garbage"}, "DATABASE_URL"),
        (("--market", "XXXX"), {}, "unsupported market 'XXXX'"),
        (("--market", "XNAS"), {}, "XNAS plans run in the XNYS run"),
        (("--date", "2126-12-04"), {}, "2126-12-04 is in the future"),
        (("--date", "2126-12-04", "--allow-future-date"), {}, "outside the years XNYS's"),
        (("--date", "2015-12-25", "--market", "XPAR"), {}, "(2019-2100)"),
    ],
)
def test_local_run_refuses_bad_input_in_one_line_and_78_as_plan_does(
    cli: Runner, args: tuple[str, ...], env: dict[str, str], named: str
) -> None:
    done = cli("local-run", "--plans", "5", *args, env=env)
    one_line(done, 78, named)
    if not args:
        one_line(cli("plan", "--dry-run", env=env), 78, named)


def test_a_future_date_is_refused_by_local_run_before_anything_starts(cli: Runner) -> None:
    later = (today() + timedelta(days=2)).date().isoformat()
    done = cli("local-run", "--plans", "5", "--date", later)
    one_line(done, 78, f"--date: {later} is in the future (today is", "--allow-future-date")
    assert "database:" not in done.stdout  # nothing seeded, no server started


# -- dates --------------------------------------------------------------------------------


def test_a_run_date_after_the_market_s_today_is_refused_and_writes_nothing(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack
) -> None:
    insert_plans(db, many_plans(3))
    later = (today() + timedelta(days=2)).date().isoformat()
    for args in (
        ("plan", "--run-date", later, "--submitter", "none"),
        ("plan", "--run-date", later, "--dry-run"),
    ):
        one_line(cli(*args), 78, f"{later} is in the future", "--allow-future-date")
    assert scalar(db, "SELECT count(*) FROM batch_runs") == 0
    assert aws.object_keys() == []
    meant = cli("plan", "--run-date", later, "--dry-run", "--allow-future-date")
    assert meant.returncode == 0, meant.stderr


def test_submit_refuses_a_future_date_before_submitting(cli: Runner, aws: AwsStack) -> None:
    later = (today() + timedelta(days=3)).date().isoformat()
    env = {"BATCH_JOB_QUEUE": aws.queue, "PLANNER_JOB_DEFINITION": aws.executor_definition}
    one_line(cli("submit", "--run-date", later, env=env), 78, "is in the future")
    assert aws.batch().list_jobs(jobQueue=aws.queue)["jobSummaryList"] == []


@pytest.mark.parametrize("when", [(), ("--run-date", "2026-11-27")], ids=["today", "a date"])
def test_submit_refuses_a_market_whose_plans_run_in_another_run_before_submitting(
    cli: Runner, aws: AwsStack, when: tuple[str, ...]
) -> None:
    env = {"BATCH_JOB_QUEUE": aws.queue, "PLANNER_JOB_DEFINITION": aws.executor_definition}
    for canary in ((), ("--canary", "--wait")):
        done = cli("submit", "--market", "XNAS", *when, *canary, env=env)
        one_line(done, 78, "XNAS plans run in the XNYS run")
    assert aws.batch().list_jobs(jobQueue=aws.queue)["jobSummaryList"] == []


@pytest.mark.parametrize(
    ("market", "day", "why"),
    [
        ("XPAR", "2015-12-25", "(2019-2100)"),  # Christmas: closed, but before the data
        ("XETR", "2015-04-03", "(2016-2100)"),  # Good Friday
        ("XNYS", "2126-12-04", "(1863-2100)"),
    ],
)
def test_a_date_outside_the_market_s_calendar_data_is_refused(
    cli: Runner, db: psycopg2.extensions.connection, market: str, day: str, why: str
) -> None:
    args = ("plan", "--market", market, "--run-date", day, "--dry-run")
    one_line(cli(*args, "--allow-future-date"), 78, "outside the years", why)
    if day < "2026":
        one_line(cli(*args), 78, "outside the years", why)
    assert scalar(db, "SELECT count(*) FROM batch_runs") == 0


def test_a_past_date_runs_and_says_it_is_a_catch_up(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack
) -> None:
    done = cli("plan", "--run-date", "2026-11-27", "--submitter", "none")
    assert done.returncode == 0, done.stderr
    assert "catch-up run for 2026-11-27 (today is" in done.stdout
    assert '"catch_up":true' in done.stdout


# -- run ids and chunk indexes ------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("verify", "--run-id", "NOPE-1"),
        ("status", "--run-id", "NOPE-1"),
        ("finalize", "--run-id", "NOPE-1"),
        ("redrive", "--run-id", "NOPE-1", "--submitter", "local"),
        ("execute", "--run-id", "NOPE-1", "--chunk-index", "0"),
        ("execute", "--run-id", "XNYS-20261126"),
    ],
)
def test_an_unknown_run_id_is_an_argument_error_naming_the_latest_runs(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    args: tuple[str, ...],
) -> None:
    plan_for_children(cli)  # nothing due: the run XNYS-20261127 exists, succeeded
    line = one_line(cli(*args), 78, f"no run {args[2]}", f"known runs: {RUN} (latest 5)")
    assert "OK" not in line


def test_status_of_a_date_without_a_run_names_the_runs(
    cli: Runner, db: psycopg2.extensions.connection, aws: AwsStack
) -> None:
    plan_for_children(cli)
    one_line(cli("status", "--run-date", "2026-11-20"), 78, "no run XNYS-20261120", RUN)


def test_every_run_id_option_explains_itself() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[union-attr]
    found = 0
    for name, sub in commands.items():
        for action in sub._actions:
            if "--run-id" in action.option_strings:
                found += 1
                assert action.help and "XNYS-20261127" in action.help, name
    assert found == 5


# -- Ctrl-C and the documentation ---------------------------------------------------------


def test_ctrl_c_exits_130_with_one_line(
    database_dsn: str, db: psycopg2.extensions.connection, aws: AwsStack
) -> None:
    insert_plans(db, many_plans(3))
    env = child_env(database_dsn, WORTHY_FAILPOINTS="planner.after_claim=pause:60")
    child = subprocess.Popen(
        [CLI, "plan", "--run-date", "2026-11-27", "--submitter", "none"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    deadline = time.monotonic() + 60
    for line in child.stdout:
        if "pausing" in line or time.monotonic() > deadline:
            break
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    (line,) = err.strip().splitlines()
    assert line == "worthy-batch plan: interrupted - run the same command again to resume"
    assert "Traceback" not in err


def test_help_lists_every_exit_code(cli: Runner) -> None:
    done = cli("--help")
    assert done.returncode == 0
    for code, words in (
        ("0", "done"),
        ("1", "a check found a problem"),
        ("65", "bad input data"),
        ("70", "internal error"),
        ("75", "transient failure"),
        ("78", "bad configuration or arguments"),
        ("130", "interrupted"),
    ):
        assert re.search(rf"(^|\s){code} {words}", done.stdout), code
