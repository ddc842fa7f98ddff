"""The `JobSubmitter` port."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Release:
    """What every job of one run is submitted with, recorded when it is planned: the job
    definitions (revision ARNs once a submitter pinned them; None: the submitter's own)
    and the executor attempt's timeout (None: the job definition's)."""

    executor_definition: str | None = None
    finalizer_definition: str | None = None
    executor_timeout_seconds: int | None = None


@dataclass(frozen=True)
class RunToSubmit:
    run_id: str
    manifest_uri: str
    chunk_count: int
    label: str | None = None  # names the jobs instead of the run id (a canary's are unique)
    release: Release = Release()

    @property
    def job_label(self) -> str:
        return self.label or self.run_id


class JobRecorder(Protocol):
    """Called with each job id as soon as it exists, so a crash right after loses nothing."""

    def __call__(self, *, executor: str | None = None, finalizer: str | None = None) -> None: ...


class JobSubmitter(Protocol):
    """Starts the executor children of a planned run, and its finalizer."""

    name: str

    def pin(self, release: Release, *, strict: bool = False) -> Release:
        """`release` with the job definitions this submitter will run the run's jobs with,
        as revisions that a later deploy does not change (recorded; redrives reuse them).
        Raises when the queue or a job definition cannot be found or reached; `strict`
        (the canary) also when this process may not look them up."""
        ...

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
