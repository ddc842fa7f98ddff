"""The operator's commands: status, redrive, verify, explain, submit, watchdog, migrate."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from common.domain.calendar import DEFAULT_MARKET, market_code
from common.platform.commands import (
    FUTURE_HELP,
    RUN_ID_HELP,
    Command,
    iso_date,
    no_arguments,
    parsed_by,
    positive_count,
)

if TYPE_CHECKING:
    from ops.root import OpsRoot

Handler = Callable[[argparse.Namespace, "OpsRoot"], int]
mic = parsed_by(market_code)


def status_arguments(status: argparse.ArgumentParser) -> None:
    which = status.add_mutually_exclusive_group()
    which.add_argument("--run-id", metavar="ID", help=RUN_ID_HELP)
    which.add_argument("--run-date", type=iso_date, metavar="YYYY-MM-DD")
    status.add_argument("--market", type=mic, default=DEFAULT_MARKET, metavar="MIC")
    status.add_argument("--json", action="store_true", help="machine-readable output")


def load_status() -> Handler:
    from ops import status

    return status.run


def redrive_arguments(redrive: argparse.ArgumentParser) -> None:
    redrive.add_argument("--run-id", required=True, metavar="ID", help=RUN_ID_HELP)
    redrive.add_argument(
        "--submitter",
        choices=("batch", "local"),
        help="default: batch inside AWS or when BATCH_JOB_QUEUE is set, else local",
    )


def load_redrive() -> Handler:
    from ops import redrive

    return redrive.run


def verify_arguments(verify: argparse.ArgumentParser) -> None:
    verify.add_argument(
        "--run-id", metavar="ID", help="limit the checks to one run: " + RUN_ID_HELP.split(": ")[1]
    )


def load_verify() -> Handler:
    from ops import verify

    return verify.run


def explain_arguments(explain: argparse.ArgumentParser) -> None:
    explain.add_argument("plan_id", type=int, metavar="PLAN_ID", help="recurring_investments.id")
    explain.add_argument(
        "--limit",
        type=positive_count,
        default=10,
        metavar="N",
        help="executions to show (default 10)",
    )
    explain.add_argument("--json", action="store_true", help="machine-readable output")


def load_explain() -> Handler:
    from ops import explain

    return explain.run


def submit_arguments(submit: argparse.ArgumentParser) -> None:
    submit.add_argument("--run-date", type=iso_date, metavar="YYYY-MM-DD")
    submit.add_argument("--allow-future-date", action="store_true", help=FUTURE_HELP)
    submit.add_argument("--market", type=mic, default=DEFAULT_MARKET, metavar="MIC")
    submit.add_argument("--wait", action="store_true", help="follow the job until it ends")
    submit.add_argument(
        "--canary",
        action="store_true",
        help="submit `plan --canary` instead (date: --run-date, a Saturday or Sunday; default "
        "the last one); with --wait, follow the planner, then the canary's finalizer, check "
        "its report and delete the canary's files from MANIFEST_BUCKET",
    )
    submit.add_argument(
        "--timeout",
        type=float,
        default=3600,
        metavar="SECONDS",
        help="give up waiting after this long (default: 3600)",
    )


def load_submit() -> Handler:
    from ops import canary, submit

    def submit_or_canary(args: argparse.Namespace, root: OpsRoot) -> int:
        # `submit --canary` is the smoke test's slice (ops/canary.py), on the same wiring.
        return (canary.run if args.canary else submit.run)(args, root)

    return submit_or_canary


def watchdog_arguments(watchdog: argparse.ArgumentParser) -> None:
    watchdog.add_argument(
        "--run-date",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="the day to check (default: today in the market's time zone)",
    )
    watchdog.add_argument("--market", type=mic, default=DEFAULT_MARKET, metavar="MIC")


def load_watchdog() -> Handler:
    from ops import watchdog

    return watchdog.run


def load_migrate() -> Handler:
    from ops import migrate

    return migrate.run


COMMANDS: tuple[Command[OpsRoot], ...] = (
    Command(
        "status",
        help="show a run and its chunks",
        description="The run (default: the latest) and a table of its chunks: status, "
        "attempts, counts and duration.",
        add_arguments=status_arguments,
        load=load_status,
    ),
    Command(
        "redrive",
        help="rerun only the chunks of a run that did not succeed, then finalize",
        description="Reruns every chunk whose status is not succeeded: as local processes, or "
        "as AWS Batch jobs in AWS. Nothing is bought twice.",
        add_arguments=redrive_arguments,
        load=load_redrive,
    ),
    Command(
        "verify",
        help="check the ledger's invariants; exit 1 listing each violation",
        description="Every purchased execution has exactly one transaction and vice versa; "
        "each holding equals the sum of its transactions; no plan is due again on or before "
        "a date it was bought for.",
        add_arguments=verify_arguments,
        load=load_verify,
    ),
    Command(
        "explain",
        help="why a plan was or was not charged: schedule, recent executions, next date",
        description="One plan's schedule, its recent executions with status and reason (and "
        "what was bought), and its next date with why (holiday roll, month-end cap). An "
        "unknown plan id exits 78.",
        add_arguments=explain_arguments,
        load=load_explain,
    ),
    Command(
        "submit",
        help="submit the planner job to AWS Batch (and follow it with --wait)",
        description="Submits the planner job definition to the job queue, as the schedule "
        "would. With --wait, follows the job and its CloudWatch log stream until it ends.",
        add_arguments=submit_arguments,
        load=load_submit,
    ),
    Command(
        "watchdog",
        help="exit 1 when a market day's run is missing or not final (the schedule's alarm)",
        description="Exit 0 when the market is closed on the day or its run is final "
        "(succeeded, partial or failed); exit 1 with one line saying what to do when the "
        "market trades and the run is missing or unfinished. A second schedule submits it "
        "after the day's run should have ended; the failed-job alarm rides on it.",
        add_arguments=watchdog_arguments,
        load=load_watchdog,
    ),
    Command(
        "migrate",
        help="apply schema migrations (idempotent)",
        description="Create or upgrade the schema. Safe to run any number of times, "
        "from several processes at once.",
        add_arguments=no_arguments,
        load=load_migrate,
    ),
)
