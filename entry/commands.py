"""The entry layer's own command: `worthy-batch local-run`, the dev kit's.

Declared here so that every install lists it and parses its options; its handler
is the dev kit's, found through the entry point group (common/platform/plugins.py),
and an install without the dev kit (the image) says so in one line (exit 78).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from common.domain.calendar import DEFAULT_MARKET, market_code
from common.platform.commands import FUTURE_HELP, Command, iso_date, parsed_by

if TYPE_CHECKING:
    from entry.bootstrap import Root


def local_run_arguments(local: argparse.ArgumentParser) -> None:
    local.add_argument(
        "--date",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="the market day to run (default: the latest market day, today included)",
    )
    local.add_argument("--allow-future-date", action="store_true", help=FUTURE_HELP)
    local.add_argument(
        "--plans",
        type=int,
        metavar="N",
        help="demo plans to seed (default: 2000, or what is seeded); a number other than "
        "what is seeded starts the demo over",
    )
    local.add_argument(
        "--market", type=parsed_by(market_code), default=DEFAULT_MARKET, metavar="MIC"
    )
    local.add_argument(
        "--fail-symbols",
        metavar="SYM[,SYM]",
        help="make both price providers answer HTTP 500 for these symbols (a bad day: the "
        "run ends partial); then the providers recover and local-run redrives the run",
    )


def load_local_run() -> Callable[[argparse.Namespace, Root], int]:
    from common.platform import plugins

    handler: Callable[[argparse.Namespace, Root], int] = plugins.devkit(
        "local_run", "worthy-batch local-run"
    )
    return handler


COMMANDS: tuple[Command[Root], ...] = (
    Command(
        "local-run",
        help="both stages on this machine (what `make local-run` calls)",
        description="Starts the embedded PostgreSQL, a loopback moto S3 (objects kept in "
        ".local/s3/) and the stub market server (unless real API keys are set), seeds demo "
        "plans once, plans the day on the local AWS Batch emulator (the stack's job "
        "definitions and rules), prints the job graph and the report. Interrupted (Ctrl-C, "
        "exit 130) or crashed, the same command again resumes the day.",
        add_arguments=local_run_arguments,
        load=load_local_run,
    ),
)
