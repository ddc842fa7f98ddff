"""Helpers for the reliability suites: run children that we break.

The stage under test always runs as the real console script in its own
process (that is what gets killed, paused, cut off from its database or S3).
Planning, which is only the setup here, runs in-process (`tests.runs.plan_day`):
the planner's own crash tests are in tests/e2e/test_plan_cli.py.
"""

from __future__ import annotations

import io
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import psycopg2.extensions
import pytest

from common.adapters.store.verify import violations
from common.domain.calendar import calendar_for
from common.domain.run_key import RunKey
from common.platform import failpoints
from common.platform.logging import setup_logging
from entry.cli import main
from tests.conftest import leaked_sentinels
from tests.e2e.conftest import CLI, cli, ledger_verifies  # noqa: F401 (fixtures)
from tests.factories import scalar

__all__ = ["cli", "ledger_verifies"]


def market_days(first: date, count: int, market: str = "XNYS") -> list[date]:
    """`count` consecutive market days of `market`, from `first` on."""
    calendar = calendar_for(market)
    days: list[date] = []
    day = first
    while len(days) < count:
        if calendar.closure_name(day) is None:
            days.append(day)
        day += timedelta(days=1)
    return days


def run_id(run_date: date, market: str = "XNYS") -> str:
    return RunKey(market, run_date).run_id


class Child:
    """A `worthy-batch` process whose output is read as it comes, so a test can wait for
    a line (a fail point's "pausing") and act while the process is stalled there."""

    started: list[Child] = []  # for the clean-up after each test

    def __init__(self, args: list[str], env: Mapping[str, str]) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [CLI, *args],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self._out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        Child.started.append(self)

    @staticmethod
    def _read(stream: io.TextIOBase, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def wait_for(self, text: str, timeout: float = 30) -> None:
        """Block until a line of stdout contains `text`; fail if the process ends first."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in list(self._out)):
            if self.process.poll() is not None and not self._readers[0].is_alive():
                raise AssertionError(f"{self.args} ended ({self.process.returncode}) before {text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.args}: no {text!r} within {timeout}s")
            time.sleep(0.01)

    def resume(self) -> None:
        """Let a process stalled at a `=pause:` fail point carry on."""
        self.process.send_signal(signal.SIGUSR1)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        """Wait for the end; return (exit code, stdout, stderr), checked for leaked secrets."""
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        out, err = "".join(self._out), "".join(self._err)
        leaked = leaked_sentinels(out, err)
        assert not leaked, f"`worthy-batch {' '.join(self.args)}` printed a secret: {leaked}"
        return code, out, err


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


InProcess = Callable[..., Done]


@pytest.fixture
def in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_dsn: str
) -> InProcess:
    """`worthy-batch ARGS` through `entry.cli.main` in this process: the same process edge
    (exit codes, the one stderr line, logs on stdout) without paying for a new interpreter,
    for suites that run the CLI hundreds of times. `env` values of None unset a variable."""
    monkeypatch.setenv("DATABASE_URL", database_dsn)
    monkeypatch.setenv("LOG_FORMAT", "json")

    def run(*args: str, env: Mapping[str, str | None] | None = None) -> Done:
        capsys.readouterr()
        with monkeypatch.context() as scoped:
            for name, value in (env or {}).items():
                if value is None:
                    scoped.delenv(name, raising=False)
                else:
                    scoped.setenv(name, value)
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's errors exit from inside main
                code = int(exc.code or 0)
            finally:
                failpoints.configure(None)
                setup_logging("json", stream=io.StringIO())  # not the captured stream
        out, err = capsys.readouterr()
        leaked = leaked_sentinels(out, err)
        assert not leaked, f"`worthy-batch {' '.join(args)}` printed a secret: {leaked}"
        return Done(code, out, err)

    return run


@pytest.fixture(autouse=True)
def _no_child_outlives_its_test() -> Iterator[None]:
    """A test that fails while a child is paused or running must not leave it behind."""
    yield
    while Child.started:
        child = Child.started.pop()
        if child.process.poll() is None:
            child.process.kill()
            child.finish()


def assert_sound(db: psycopg2.extensions.connection, run_date: date | None = None) -> None:
    """`verify`'s invariants, plus: no plan has two transactions for one date."""
    found = violations(db)
    assert found == [], found
    twice = scalar(
        db,
        "SELECT count(*) FROM (SELECT plan_id, scheduled_date FROM transactions "
        "GROUP BY 1, 2 HAVING count(*) > 1) AS twice",
    )
    assert twice == 0
    if run_date is not None:
        half = scalar(
            db,
            "SELECT count(*) FROM plan_executions e LEFT JOIN transactions t "
            "ON t.plan_id = e.plan_id AND t.scheduled_date = e.scheduled_date "
            "WHERE e.scheduled_date = %s AND (e.status = 'purchased') <> (t.id IS NOT NULL)",
            (run_date,),
        )
        assert half == 0, "an execution and its transaction disagree"
