"""Local processes: each chunk as its own `python -m executor` process, a few at a
time, then finalize. What `make local-run` and a local `redrive` use.

Like AWS Batch's retry strategy, a child that exits 75 (transient) is started
again, up to `attempts` times. Each child's output goes to a log file under
`.local/runs/<run_id>/`, so the terminal shows only the progress bar.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from common.errors import ExitCode
from common.logging import get_logger
from common.progress import Progress
from common.submitters.base import JobRecorder, RunToSubmit

log = get_logger(__name__)

POLL_SECONDS = 0.05
CommandFor = Callable[[Sequence[str]], list[str]]


def python_command(args: Sequence[str]) -> list[str]:
    """`worthy-batch ARGS` through this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "common.cli", *args]


class LocalSubmitter:
    name = "local"

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        parallelism: int,
        log_dir: Path,
        attempts: int = 3,
        command: CommandFor = python_command,
    ) -> None:
        self._env = dict(env)
        self._parallelism = max(1, parallelism)
        self._log_dir = log_dir
        self._attempts = attempts
        self._command = command

    def submit(self, run: RunToSubmit, record: JobRecorder) -> str:
        record(executor=f"local:{os.getpid()}")
        codes = self.run_chunks(run, list(range(run.chunk_count)))
        return self._finish(run, codes)

    def redrive(self, run: RunToSubmit, chunks: Sequence[int], attempt: int) -> str:
        codes = self.run_chunks(run, list(chunks))
        return self._finish(run, codes)

    def run_chunks(self, run: RunToSubmit, chunks: list[int]) -> dict[int, int]:
        """Run each chunk to completion (retrying exit 75); return the last exit code of each."""
        run_dir = self._log_dir / run.run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        pending = [(index, 1) for index in chunks]
        running: dict[subprocess.Popen[bytes], tuple[int, int]] = {}
        codes: dict[int, int] = {}
        progress = Progress(len(chunks), f"{run.run_id} chunks")
        try:
            while pending or running:
                while pending and len(running) < self._parallelism:
                    index, attempt = pending.pop(0)
                    running[self._start(run, index, run_dir)] = (index, attempt)
                time.sleep(POLL_SECONDS)
                for process in [p for p in running if p.poll() is not None]:
                    index, attempt = running.pop(process)
                    code = process.returncode
                    if code == ExitCode.TEMPFAIL and attempt < self._attempts:
                        log.warning("chunk %d exited 75; retrying (attempt %d)", index, attempt + 1)
                        pending.append((index, attempt + 1))
                        continue
                    codes[index] = code
                    failed = sum(1 for c in codes.values() if c != 0)
                    progress.advance(note=f"{failed} failed" if failed else "")
        finally:
            for process in running:
                process.kill()
            progress.close()
        return codes

    def _start(self, run: RunToSubmit, index: int, run_dir: Path) -> subprocess.Popen[bytes]:
        args = ["execute", "--run-id", run.run_id, "--chunk-index", str(index)]
        with open(run_dir / f"chunk-{index:05d}.log", "ab") as output:
            return subprocess.Popen(
                self._command(args), env=self._env, stdout=output, stderr=subprocess.STDOUT
            )

    def _finish(self, run: RunToSubmit, codes: dict[int, int]) -> str:
        with open(self._log_dir / run.run_id / "finalize.log", "ab") as output:
            finalize = subprocess.run(
                self._command(["finalize", "--run-id", run.run_id]),
                env=self._env,
                stdout=output,
                stderr=subprocess.STDOUT,
                check=False,
            )
        failed = sorted(i for i, c in codes.items() if c != 0)
        summary = f"ran {len(codes)} chunk(s) locally"
        if failed:
            summary += f"; {len(failed)} did not succeed (chunks {_ranges(failed)})"
        if finalize.returncode != 0:
            summary += f"; finalize exited {finalize.returncode}"
        return f"{summary}; logs in {self._log_dir / run.run_id}"


def _ranges(indexes: list[int]) -> str:
    shown = ", ".join(str(i) for i in indexes[:10])
    return shown + (f", ... ({len(indexes)} in all)" if len(indexes) > 10 else "")
