"""Submit nothing: print the commands an operator would run for each chunk."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

from common.adapters.submitters.base import JobRecorder, Release, RunToSubmit


class NoneSubmitter:
    name = "none"

    def __init__(self, out: IO[str] | None = None) -> None:
        self._out = out or sys.stdout

    def pin(self, release: Release, *, strict: bool = False) -> Release:
        return release  # nothing is submitted, so nothing to pin

    def submit(self, run: RunToSubmit, record: JobRecorder) -> str:
        return self._print(run, range(run.chunk_count))

    def redrive(
        self, run: RunToSubmit, chunks: Sequence[int], attempt: int, record: JobRecorder
    ) -> str:
        return self._print(run, chunks)  # nothing submitted, so nothing recorded

    def _print(self, run: RunToSubmit, chunks: Sequence[int]) -> str:
        self._out.write(
            f"# {len(chunks)} chunk(s) of {run.run_id}; run each (any order, any time):\n"
        )
        for index in chunks:
            self._out.write(f"worthy-batch execute --run-id {run.run_id} --chunk-index {index}\n")
        self._out.write(f"worthy-batch finalize --run-id {run.run_id}\n")
        self._out.flush()
        return f"submitted nothing (--submitter none); printed {len(chunks)} command(s)"
