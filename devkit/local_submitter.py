"""This machine as the compute environment: the stack's AWS Batch, emulated.

`LocalSubmitter` starts the dev kit's Batch emulator (job definitions, retry
strategies and EventBridge rules from infra/template.yaml), submits through
the same `BatchSubmitter` as in AWS, runs the children as local processes
(`parallelism` at a time), waits until every job has ended, and prints the job
graph it played. What `make local-run` and a local `redrive` use. Each job's
output goes to a log file under `.local/runs/<run_id>/`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from common.adapters.submitters.base import JobRecorder, Release, RunToSubmit
from common.platform.logging import get_logger
from common.platform.progress import Progress
from devkit.embedded_pg import local_dir, shown

if TYPE_CHECKING:
    from devkit.batch.local import LocalBatch

log = get_logger(__name__)
PROGRESS_TAIL_BYTES = 4096  # of a running child's log, read for its last progress line


def python_command(args: Sequence[str]) -> list[str]:
    """`worthy-batch ARGS` through this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "entry.cli", *args]


class LocalSubmitter:
    name = "local"

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        parallelism: int,
        log_dir: Path | None = None,
        out: IO[str] | None = None,
    ) -> None:
        self._env = dict(env)
        self._parallelism = max(1, parallelism)
        self._log_dir = log_dir or local_dir() / "runs"
        self._out = out or sys.stdout

    def pin(self, release: Release, *, strict: bool = False) -> Release:
        # Each play starts an emulator with the template's definitions, one revision each.
        return release

    def submit(self, run: RunToSubmit, record: JobRecorder) -> str:
        return self._play(run, lambda submitter: submitter.submit(run, record))

    def redrive(
        self, run: RunToSubmit, chunks: Sequence[int], attempt: int, record: JobRecorder
    ) -> str:
        return self._play(run, lambda submitter: submitter.redrive(run, chunks, attempt, record))

    def _play(self, run: RunToSubmit, submit: Callable[..., str]) -> str:
        from devkit.batch.local import LocalBatch

        run_dir = self._log_dir / run.run_id
        with LocalBatch(log_dir=run_dir, slots=self._parallelism, base_env=self._env) as batch:
            message = submit(batch.submitter())
            children = [j for j in batch.emulator.jobs() if not j.is_parent]
            progress = Progress(len(children), f"{run.run_id} jobs")
            try:
                batch.emulator.wait(tick=lambda: _advance(progress, batch))
                _advance(progress, batch)
            finally:
                progress.close()
            self._out.write(batch.graph() + "\n")
            self._out.flush()
            failed = [
                j.name
                for j in batch.emulator.jobs()
                if j.status == "FAILED" and j.parent_id is None
            ]
        summary = f"{message}; ran them on the local AWS Batch emulator"
        if failed:
            summary += f"; {len(failed)} job(s) FAILED ({', '.join(failed)})"
        return f"{summary}; logs in {shown(run_dir)}"


def _advance(progress: Progress, batch: LocalBatch) -> None:
    jobs = [j for j in batch.emulator.jobs() if not j.is_parent]
    progress.total = len(jobs)  # rules may add jobs (a rescue finalizer) while it runs
    ended = sum(1 for j in jobs if j.status in ("SUCCEEDED", "FAILED"))
    progress.note = _children_progress(batch, jobs)
    progress.advance(ended - progress.done)


def _children_progress(batch: LocalBatch, jobs: list[Any]) -> str:
    """The last progress line each running child logged (`[0] pricing: 12/116 ...`): what
    the jobs bar says while a child waits on a provider's rate."""
    said = []
    for job in jobs:
        if job.status != "RUNNING":
            continue
        path = batch.emulator.log_dir / f"{job.label}.log"
        try:
            with path.open("rb") as log_file:
                log_file.seek(max(0, path.stat().st_size - PROGRESS_TAIL_BYTES))
                tail = log_file.read().decode("utf-8", "replace").splitlines()
        except OSError:
            continue
        for line in reversed(tail):
            message = _message(line)
            if message.startswith(("pricing: ", "writing: ")):
                said.append(f"[{job.index if job.index is not None else 0}] {message}")
                break
    return "; ".join(said)


def _message(line: str) -> str:
    try:
        entry = json.loads(line)
    except ValueError:
        return ""
    return str(entry.get("message", "")) if isinstance(entry, dict) else ""
