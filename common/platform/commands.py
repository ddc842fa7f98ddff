"""A command of `worthy-batch`: how the CLI offers it and how it runs.

Each stage declares its own commands (planner/commands.py, executor/commands.py,
finalizer/commands.py, ops/commands.py); entry/cli.py builds one parser from them
and runs the one chosen. A command's `load` imports its handler's module with a
plain import statement inside the function, so the module is loaded only when the
command runs (an executor child never pays for the planner's imports) and every
tool can still follow the arrow. The handler gets the parsed arguments and the
composition root (entry/bootstrap.py), typed by the stage as a Protocol of what
it asks the root for.

Also here: the argument types the commands share, each failing with one line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Generic, TypeVar

R = TypeVar("R", contravariant=True)  # what a handler needs of the composition root
T = TypeVar("T")

RUN_ID_HELP = "the run: MIC-YYYYMMDD, e.g. XNYS-20261127 (`worthy-batch status` shows the latest)"
FUTURE_HELP = (
    "run a date after today in the market's time zone (refused otherwise: it would buy "
    "before the day, at earlier prices)"
)


@dataclass(frozen=True)
class Command(Generic[R]):
    """One subcommand: its name and texts, its options, and its handler."""

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    # Imports the handler's module (a named import inside the function) and returns the
    # handler; the CLI calls it with the cyclic collector off (entry/cli.py, `_load`).
    load: Callable[[], Callable[[argparse.Namespace, R], int]]


def no_arguments(_: argparse.ArgumentParser) -> None:
    """`add_arguments` of a command without options."""


def parsed_by(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argument type from a parser whose ValueError says what is wrong: argparse
    then prints that text, not its own "invalid value"."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (expected YYYY-MM-DD)") from None


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
