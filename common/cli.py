"""`worthy-batch`: one console script, a subcommand per stage or operator task.

Parsers live here (argparse only, cheap to import); each handler is imported
when its subcommand runs, so an executor child does not pay for the planner's
imports. This is the process edge: deliberate errors become their exit code
and one line on stderr; anything else is a bug (exit 70) and is logged whole.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import NoReturn

from common.errors import ExitCode, WorthyError
from common.logging import get_logger, setup_logging
from common.redact import redact

PROG = "worthy-batch"

EPILOG = """\
exit codes: 0 done (also: market closed, nothing due, already complete)
            65 bad input data (corrupt manifest) - never retried
            75 transient failure (database, S3, providers) - Batch retries
            78 bad configuration or arguments
environment: see README.md "Configuration" (DATABASE_URL, MANIFEST_BUCKET, ...)
"""

Handler = Callable[[argparse.Namespace], int]


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
    return text.upper()


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

    migrate = commands.add_parser(
        "migrate",
        help="apply schema migrations (idempotent)",
        description="Create or upgrade the schema. Safe to run any number of times, "
        "from several processes at once.",
    )
    migrate.set_defaults(handler="common.migrate_cli:run")
    return parser


def _load(path: str) -> Handler:
    module, _, name = path.partition(":")
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return ExitCode.CONFIG
    log_format = os.environ.get("LOG_FORMAT", "auto")
    setup_logging(log_format if log_format in ("json", "text") else "auto")  # type: ignore[arg-type]
    command = f"{PROG} {args.command}"
    try:
        return _load(args.handler)(args)
    except WorthyError as exc:
        sys.stderr.write(redact(f"{command}: {exc}") + "\n")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write(f"{command}: interrupted\n")
        return 130
    except Exception as exc:  # the process edge: a bug, not an expected failure
        get_logger("cli").exception("unexpected error")
        sys.stderr.write(
            redact(f"{command}: internal error: {type(exc).__name__}: {exc} - please report it")
            + "\n"
        )
        return int(ExitCode.SOFTWARE)


def run_module(command: str) -> NoReturn:
    """`python -m planner` and friends: the same as `worthy-batch <command>`."""
    sys.exit(main([command, *sys.argv[1:]]))
