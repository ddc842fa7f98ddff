"""The finalizer's command: `worthy-batch finalize`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from common.platform.commands import RUN_ID_HELP, Command

if TYPE_CHECKING:
    from finalizer.entrypoint import FinalizerRoot


def finalize_arguments(finalize: argparse.ArgumentParser) -> None:
    finalize.add_argument("--run-id", required=True, metavar="ID", help=RUN_ID_HELP)


def load_finalize() -> Callable[[argparse.Namespace, FinalizerRoot], int]:
    from finalizer import entrypoint

    return entrypoint.run


COMMANDS: tuple[Command[FinalizerRoot], ...] = (
    Command(
        "finalize",
        help="aggregate chunk results into report.json and close the run",
        description="Reads every results/N.json of the run, writes report.json, sets the run's "
        "status (succeeded, partial, failed) and emits metrics. Safe to run again.",
        add_arguments=finalize_arguments,
        load=load_finalize,
    ),
)
