"""The planner's command: `worthy-batch plan`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from common.domain.calendar import DEFAULT_MARKET, market_code
from common.platform.commands import FUTURE_HELP, Command, iso_date, parsed_by

if TYPE_CHECKING:
    from planner.entrypoint import PlannerRoot


def plan_arguments(plan: argparse.ArgumentParser) -> None:
    plan.add_argument(
        "--run-date",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="the market day to run (default: today in the market's time zone); a past "
        "date is a catch-up, a future one needs --allow-future-date",
    )
    plan.add_argument("--allow-future-date", action="store_true", help=FUTURE_HELP)
    plan.add_argument(
        "--market",
        type=parsed_by(market_code),
        default=DEFAULT_MARKET,
        metavar="MIC",
        help=f"ISO 10383 market identifier code whose calendar decides (default: {DEFAULT_MARKET})",
    )
    plan.add_argument(
        "--submitter",
        choices=("batch", "local", "none"),
        help="where executors run: AWS Batch, local processes, or nowhere (print the commands); "
        "default: batch inside AWS Batch or when BATCH_JOB_QUEUE is set, else local",
    )
    plan.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be bought and write nothing (database and S3 untouched)",
    )
    plan.add_argument(
        "--canary",
        action="store_true",
        help="the smoke test's probe: on a Saturday or Sunday (default: the last one), write a "
        "run with one empty chunk and submit its executor and finalizer, which check their "
        "secrets, S3 and database access, buy nothing and delete the run's rows",
    )


def load_plan() -> Callable[[argparse.Namespace, PlannerRoot], int]:
    from planner import canary, entrypoint

    def plan(args: argparse.Namespace, root: PlannerRoot) -> int:
        # `plan --canary` is the smoke test's slice (planner/canary.py), on the same wiring.
        return (canary.run if args.canary else entrypoint.run)(args, root)

    return plan


COMMANDS: tuple[Command[PlannerRoot], ...] = (
    Command(
        "plan",
        help="plan a market day: snapshot due plans, write manifests, submit executors",
        description="The first stage. Checks that the market is open, claims the run "
        "(market, run date), snapshots the due plans into symbol-affine chunks in S3 and "
        "submits one executor per chunk plus a finalizer. Safe to run again: a complete run "
        "is left alone and a crashed one resumes without submitting twice.",
        add_arguments=plan_arguments,
        load=load_plan,
    ),
)
