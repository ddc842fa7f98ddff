"""The `JobSubmitter` port."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RunToSubmit:
    run_id: str
    manifest_uri: str
    chunk_count: int
    label: str | None = None  # names the jobs instead of the run id (a canary's are unique)

    @property
    def job_label(self) -> str:
        return self.label or self.run_id


class JobRecorder(Protocol):
    """Called with each job id as soon as it exists, so a crash right after loses nothing."""

    def __call__(self, *, executor: str | None = None, finalizer: str | None = None) -> None: ...


class JobSubmitter(Protocol):
    """Starts the executor children of a planned run, and its finalizer."""

    name: str

    def submit(self, run: RunToSubmit, record: JobRecorder) -> str:
        """Start every chunk of `run`; return one line saying what was started.

        Must be safe to call again for the same run after a crash: nothing is
        started twice.
        """
        ...

    def redrive(
        self, run: RunToSubmit, chunks: Sequence[int], attempt: int, record: JobRecorder
    ) -> str:
        """Start only `chunks` again (redrive number `attempt`) as one job, then finalize.

        `record` is called with each job id once the job is accepted; the finalizer's
        comes last, so it means the whole redrive was accepted."""
        ...
