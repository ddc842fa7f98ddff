"""The executor's command: `worthy-batch execute`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from common.platform.commands import RUN_ID_HELP, Command, chunk_number

if TYPE_CHECKING:
    from executor.entrypoint import ExecutorRoot


def execute_arguments(execute: argparse.ArgumentParser) -> None:
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


def load_execute() -> Callable[[argparse.Namespace, ExecutorRoot], int]:
    from executor import entrypoint

    return entrypoint.run


COMMANDS: tuple[Command[ExecutorRoot], ...] = (
    Command(
        "execute",
        help="execute one chunk of a planned run",
        description="The second stage: verifies chunk N of a run, prices its symbols once per "
        "run, and writes each purchase exactly once. Can be rerun by index at any time.",
        add_arguments=execute_arguments,
        load=load_execute,
    ),
)
