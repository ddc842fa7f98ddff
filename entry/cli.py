"""`worthy-batch`: one console script, a subcommand per stage or operator task.

Each package declares its commands (planner/commands.py, executor/commands.py,
finalizer/commands.py, ops/commands.py, entry/commands.py: their options, texts
and handlers, cheap to import); this module builds one parser from them, imports
the chosen command's handler and the composition root (entry/bootstrap.py) when
it runs, and hands the handler a `Root`. A command in a process of its own loads
only its own package's table, so an executor child does not pay for the
planner's imports. This is the process edge: deliberate errors become their exit code
and one line on stderr, AWS and database errors are sorted by the table of
common/adapters/error_map.py (78 configuration, 75 transient), Ctrl-C is 130, and
anything else is a bug (exit 70) and is logged whole.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from common.adapters.error_map import translate
from common.domain.errors import ExitCode, InternalError
from common.platform import failpoints
from common.platform.commands import Command
from common.platform.logging import get_logger, setup_logging
from common.platform.redact import redact

if TYPE_CHECKING:
    from entry.bootstrap import Root

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

Table = Sequence[Command["Root"]]


def planner_commands() -> Table:
    from planner import commands

    return commands.COMMANDS


def executor_commands() -> Table:
    from executor import commands

    return commands.COMMANDS


def finalizer_commands() -> Table:
    from finalizer import commands

    return commands.COMMANDS


def ops_commands() -> Table:
    from ops import commands

    return commands.COMMANDS


def entry_commands() -> Table:
    from entry import commands

    return commands.COMMANDS


# Who declares which command, in the order `--help` lists them. A command in a process of
# its own imports only its own package's table: an executor child never loads the
# planner's or the operator's modules (tests/unit/test_cli_tables.py checks the names).
TABLES: tuple[tuple[tuple[str, ...], Callable[[], Table]], ...] = (
    (("plan",), planner_commands),
    (("execute",), executor_commands),
    (("finalize",), finalizer_commands),
    (("status", "redrive", "verify", "explain", "submit", "watchdog", "migrate"), ops_commands),
    (("local-run",), entry_commands),
)


class _Parser(argparse.ArgumentParser):
    """argparse that exits 78 with one line instead of 2 with the usage block."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: bad arguments: {message} (see {self.prog} --help)\n")
        sys.exit(ExitCode.CONFIG)


def commands_for(argv: Sequence[str] | None = None) -> list[Command[Root]]:
    """The commands to offer: the one `argv` names when it names one, else all of them."""
    first = argv[0] if argv else None
    for names, table in TABLES:
        if first in names:
            return [c for c in table() if c.name == first]
    return [command for _, table in TABLES for command in table()]


def build_parser(commands: Sequence[Command[Root]] | None = None) -> argparse.ArgumentParser:
    """The parser of `worthy-batch` with `commands` (default: every command)."""
    parser = _Parser(
        prog=PROG,
        description="Recurring-investment execution: plan a market day, execute its chunks, "
        "and operate the runs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=_Parser
    )
    for command in commands_for() if commands is None else commands:
        sub = subparsers.add_parser(
            command.name, help=command.help, description=command.description
        )
        command.add_arguments(sub)
        sub.set_defaults(handler=command)
    return parser


def _load(
    command: Command[Root], own_process: bool
) -> tuple[Callable[[argparse.Namespace, Root], int], Root]:
    """The command's handler and a composition root for it. In a process of its own,
    their imports load with the cyclic garbage collector off, and what they made is
    frozen out of later collections.

    A stage's imports (pydantic, botocore, psycopg2) leave some 80,000 objects for the
    collector to track and free almost none: its passes over them during the imports,
    during the work and at exit find nothing, and cost an executor child about a fifth of
    its start-up (BENCHMARKS.md). Objects made later are collected as usual
    (https://docs.python.org/3/library/gc.html#gc.freeze), among them what an executor
    imports when it first prices (requests and the providers' modules, about 1 ms of
    collection). Not in a caller's process (tests call `main`): freezing there would keep
    whatever the caller made.
    """
    if not own_process:
        return _imported(command)
    gc.disable()
    try:
        return _imported(command)
    finally:
        gc.freeze()
        gc.enable()


def _imported(command: Command[Root]) -> tuple[Callable[[argparse.Namespace, Root], int], Root]:
    from entry.bootstrap import Root

    return command.load(), Root()


def start() -> int:
    """The console script `worthy-batch` and `python -m entry.cli`: one command in a process
    of its own, which ends with it."""
    return main(own_process=True)


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    """Run the command `argv` (default: the process's arguments); return its exit code."""
    parser = build_parser(commands_for(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    command: Command[Root] | None = getattr(args, "handler", None)
    if command is None:
        parser.print_help(sys.stderr)
        return ExitCode.CONFIG
    failpoints.configure(os.environ.get("WORTHY_FAILPOINTS"))
    log_format = os.environ.get("LOG_FORMAT", "auto")
    setup_logging(log_format if log_format in ("json", "text") else "auto")  # type: ignore[arg-type]
    name = f"{PROG} {args.command}"
    try:
        handler, root = _load(command, own_process)
        return handler(args, root)
    except KeyboardInterrupt:
        sys.stderr.write(f"{name}: interrupted - run the same command again to resume\n")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # the process edge: ours, AWS's or the database's, or a bug
        # Whenever it happens (an RDS failover mid-snapshot, S3 unreachable while
        # writing, a bucket that does not exist), a foreign error is sorted by the one
        # table of common/adapters/error_map.py: 78 configuration, 75 transient, 70 a bug.
        error = translate(exc)
        if isinstance(error, InternalError):
            get_logger("cli").exception("unexpected error")
        sys.stderr.write(one_line(f"{name}: {error}") + "\n")
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
