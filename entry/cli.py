"""`worthy-batch`: one console script, a subcommand per stage or operator task.

Parsers live here (argparse only, cheap to import); each handler is imported
when its subcommand runs, so an executor child does not pay for the planner's
imports. This is the process edge: deliberate errors become their exit code
and one line on stderr, AWS and database errors are sorted by the table of
common/adapters/error_map.py (78 configuration, 75 transient), Ctrl-C is 130, and
anything else is a bug (exit 70) and is logged whole.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import NoReturn

from common.adapters.error_map import translate
from common.domain.calendar import DEFAULT_MARKET, SUPPORTED_MICS, UnsupportedMarket
from common.platform import failpoints
from common.platform.errors import ExitCode, InternalError
from common.platform.logging import get_logger, setup_logging
from common.platform.redact import redact

PROG = "worthy-batch"
MAX_ERROR_LINE = 1000  # characters of the one stderr line a failing command prints

EPILOG = """\
exit codes: 0 done (also: market closed, nothing due, already complete)
            1 a check found a problem (verify; the job submit --wait followed failed)
            65 bad input data (corrupt manifest) - never retried
            70 internal error (a bug) - please report it
            75 transient failure (database, S3, Batch, providers) - Batch retries
            78 bad configuration or arguments (missing bucket, unknown run id, ...)
            130 interrupted (Ctrl-C)
environment: see docs/configuration.md (DATABASE_URL, MANIFEST_BUCKET, ...)
"""

Handler = Callable[[argparse.Namespace], int]

RUN_ID_HELP = "the run: MIC-YYYYMMDD, e.g. XNYS-20261127 (`worthy-batch status` shows the latest)"
FUTURE_HELP = (
    "run a date after today in the market's time zone (refused otherwise: it would buy "
    "before the day, at earlier prices)"
)


class _Parser(argparse.ArgumentParser):
    """argparse that exits 78 with one line instead of 2 with the usage block."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: bad arguments: {message} (see {self.prog} --help)\n")
        sys.exit(ExitCode.CONFIG)


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (expected YYYY-MM-DD)") from None


def mic(text: str) -> str:
    if len(text) != 4 or not text.isalnum():
        raise argparse.ArgumentTypeError(f"not a market identifier code: {text!r} (e.g. XNYS)")
    if text.upper() not in SUPPORTED_MICS:
        raise argparse.ArgumentTypeError(str(UnsupportedMarket(text.upper())))
    return text.upper()


def chunk_number(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a chunk index: {text!r} (0, 1, ...)") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{number}: chunk indexes start at 0")
    return number


def positive_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a count of 1 or more: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Recurring-investment execution: plan a market day, execute its chunks, "
        "and operate the runs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=_Parser
    )

    plan = commands.add_parser(
        "plan",
        help="plan a market day: snapshot due plans, write manifests, submit executors",
        description="The first stage. Checks that the market is open, claims the run "
        "(market, run date), snapshots the due plans into symbol-affine chunks in S3 and "
        "submits one executor per chunk plus a finalizer. Safe to run again: a complete run "
        "is left alone and a crashed one resumes without submitting twice.",
    )
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
        type=mic,
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
    plan.set_defaults(handler="planner.entrypoint:run", canary_handler="planner.canary:run")

    execute = commands.add_parser(
        "execute",
        help="execute one chunk of a planned run",
        description="The second stage: verifies chunk N of a run, prices its symbols once per "
        "run, and writes each purchase exactly once. Can be rerun by index at any time.",
    )
    source = execute.add_mutually_exclusive_group()
    source.add_argument(
        "--manifest",
        metavar="S3_URI",
        help="s3://bucket/.../run.json of the run (default: MANIFEST_URI, else from --run-id)",
    )
    source.add_argument("--run-id", metavar="ID", help=RUN_ID_HELP)
    execute.add_argument(
        "--chunk-index",
        type=chunk_number,
        metavar="N",
        help="which chunk (default: CHUNK_INDEX, else AWS_BATCH_JOB_ARRAY_INDEX, else 0)",
    )
    execute.set_defaults(handler="executor.entrypoint:run")

    finalize = commands.add_parser(
        "finalize",
        help="aggregate chunk results into report.json and close the run",
        description="Reads every results/N.json of the run, writes report.json, sets the run's "
        "status (succeeded, partial, failed) and emits metrics. Safe to run again.",
    )
    finalize.add_argument("--run-id", required=True, metavar="ID", help=RUN_ID_HELP)
    finalize.set_defaults(handler="finalizer.entrypoint:run")

    status = commands.add_parser(
        "status",
        help="show a run and its chunks",
        description="The run (default: the latest) and a table of its chunks: status, "
        "attempts, counts and duration.",
    )
    which = status.add_mutually_exclusive_group()
    which.add_argument("--run-id", metavar="ID", help=RUN_ID_HELP)
    which.add_argument("--run-date", type=iso_date, metavar="YYYY-MM-DD")
    status.add_argument("--market", type=mic, default=DEFAULT_MARKET, metavar="MIC")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler="ops.status:run")

    redrive = commands.add_parser(
        "redrive",
        help="rerun only the chunks of a run that did not succeed, then finalize",
        description="Reruns every chunk whose status is not succeeded: as local processes, or "
        "as AWS Batch jobs in AWS. Nothing is bought twice.",
    )
    redrive.add_argument("--run-id", required=True, metavar="ID", help=RUN_ID_HELP)
    redrive.add_argument(
        "--submitter",
        choices=("batch", "local"),
        help="default: batch inside AWS or when BATCH_JOB_QUEUE is set, else local",
    )
    redrive.set_defaults(handler="ops.redrive:run")

    verify = commands.add_parser(
        "verify",
        help="check the ledger's invariants; exit 1 listing each violation",
        description="Every purchased execution has exactly one transaction and vice versa; "
        "each holding equals the sum of its transactions; no plan is due again on or before "
        "a date it was bought for.",
    )
    verify.add_argument(
        "--run-id", metavar="ID", help="limit the checks to one run: " + RUN_ID_HELP.split(": ")[1]
    )
    verify.set_defaults(handler="ops.verify:run")

    explain = commands.add_parser(
        "explain",
        help="why a plan was or was not charged: schedule, recent executions, next date",
        description="One plan's schedule, its recent executions with status and reason (and "
        "what was bought), and its next date with why (holiday roll, month-end cap). An "
        "unknown plan id exits 78.",
    )
    explain.add_argument("plan_id", type=int, metavar="PLAN_ID", help="recurring_investments.id")
    explain.add_argument(
        "--limit",
        type=positive_count,
        default=10,
        metavar="N",
        help="executions to show (default 10)",
    )
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(handler="ops.explain:run")

    submit = commands.add_parser(
        "submit",
        help="submit the planner job to AWS Batch (and follow it with --wait)",
        description="Submits the planner job definition to the job queue, as the schedule "
        "would. With --wait, follows the job and its CloudWatch log stream until it ends.",
    )
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
    submit.set_defaults(handler="ops.submit:run", canary_handler="ops.canary:run")

    watchdog = commands.add_parser(
        "watchdog",
        help="exit 1 when a market day's run is missing or not final (the schedule's alarm)",
        description="Exit 0 when the market is closed on the day or its run is final "
        "(succeeded, partial or failed); exit 1 with one line saying what to do when the "
        "market trades and the run is missing or unfinished. A second schedule submits it "
        "after the day's run should have ended; the failed-job alarm rides on it.",
    )
    watchdog.add_argument(
        "--run-date",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="the day to check (default: today in the market's time zone)",
    )
    watchdog.add_argument("--market", type=mic, default=DEFAULT_MARKET, metavar="MIC")
    watchdog.set_defaults(handler="ops.watchdog:run")

    migrate = commands.add_parser(
        "migrate",
        help="apply schema migrations (idempotent)",
        description="Create or upgrade the schema. Safe to run any number of times, "
        "from several processes at once.",
    )
    migrate.set_defaults(handler="ops.migrate:run")

    local = commands.add_parser(
        "local-run",
        help="both stages on this machine (what `make local-run` calls)",
        description="Starts the embedded PostgreSQL, a loopback moto S3 (objects kept in "
        ".local/s3/) and the stub market server (unless real API keys are set), seeds demo "
        "plans once, plans the day on the local AWS Batch emulator (the stack's job "
        "definitions and rules), prints the job graph and the report. Interrupted (Ctrl-C, "
        "exit 130) or crashed, the same command again resumes the day.",
    )
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
    local.add_argument("--market", type=mic, default=DEFAULT_MARKET, metavar="MIC")
    local.add_argument(
        "--fail-symbols",
        metavar="SYM[,SYM]",
        help="make both price providers answer HTTP 500 for these symbols (a bad day: the "
        "run ends partial); then the providers recover and local-run redrives the run",
    )
    local.set_defaults(handler="devkit:local_run")  # found through common.platform.plugins
    return parser


def _load(path: str, own_process: bool) -> Handler:
    """The subcommand's handler. In a process of its own, its imports load with the cyclic
    garbage collector off, and what they made is frozen out of later collections.

    A stage's imports (pydantic, botocore, psycopg2, requests) leave some 80,000 objects
    for the collector to track and free almost none: its passes over them during the
    imports, during the work and at exit find nothing, and cost an executor child about a
    fifth of its start-up (BENCHMARKS.md). Objects made later are collected as usual
    (https://docs.python.org/3/library/gc.html#gc.freeze). Not in a caller's process (tests
    call `main`): freezing there would keep whatever the caller made.
    """
    if not own_process:
        return _import_handler(path)
    gc.disable()
    try:
        return _import_handler(path)
    finally:
        gc.freeze()
        gc.enable()


def _import_handler(path: str) -> Handler:
    module, _, name = path.partition(":")
    if module == "devkit":  # not shipped: a development install registers it
        from common.platform.plugins import devkit

        found: Handler = devkit(name, f"{PROG} {name.replace('_', '-')}")
        return found
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler


def start() -> int:
    """The console script `worthy-batch` and `python -m entry.cli`: one command in a process
    of its own, which ends with it."""
    return main(own_process=True)


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    """Run the command `argv` (default: the process's arguments); return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return ExitCode.CONFIG
    failpoints.configure(os.environ.get("WORTHY_FAILPOINTS"))
    log_format = os.environ.get("LOG_FORMAT", "auto")
    setup_logging(log_format if log_format in ("json", "text") else "auto")  # type: ignore[arg-type]
    command = f"{PROG} {args.command}"
    # The canary is a slice of its own (planner/canary.py, ops/canary.py), chosen here.
    handler = args.canary_handler if getattr(args, "canary", False) else args.handler
    try:
        return _load(handler, own_process)(args)
    except KeyboardInterrupt:
        sys.stderr.write(f"{command}: interrupted - run the same command again to resume\n")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # the process edge: ours, AWS's or the database's, or a bug
        # Whenever it happens (an RDS failover mid-snapshot, S3 unreachable while
        # writing, a bucket that does not exist), a foreign error is sorted by the one
        # table of common/adapters/error_map.py: 78 configuration, 75 transient, 70 a bug.
        error = translate(exc)
        if isinstance(error, InternalError):
            get_logger("cli").exception("unexpected error")
        sys.stderr.write(one_line(f"{command}: {error}") + "\n")
        return int(error.exit_code)


def one_line(message: str, limit: int = MAX_ERROR_LINE) -> str:
    """`message` redacted, on one line, and short enough to read: error texts quote input
    (a JSON key with a newline in a corrupt chunk) and libraries (psycopg2's CONTEXT lines)."""
    text = " ".join(redact(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_module(command: str) -> NoReturn:
    """`python -m planner` and friends: the same as `worthy-batch <command>`."""
    sys.exit(main([command, *sys.argv[1:]], own_process=True))


if __name__ == "__main__":
    sys.exit(start())
