"""Helpers to run the real `worthy-batch` console script.

Every run's stdout and stderr is checked for the sentinel secrets of
`tests.conftest` (API keys, database password): a leak fails the test that
caused it, whatever that test was about.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import psycopg2.extensions
import pytest

from common.adapters.store.verify import violations
from tests.conftest import leaked_sentinels
from tests.runs import child_env

CLI = str(Path(sys.executable).with_name("worthy-batch"))

Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(database_dsn: str) -> Runner:
    """Run `worthy-batch ARGS` against the test database; return the finished process."""

    def run(
        *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        environment = child_env(database_dsn, **(env or {}))
        done = subprocess.run(
            [CLI, *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        leaked = leaked_sentinels(done.stdout, done.stderr)
        assert not leaked, f"`worthy-batch {' '.join(args)}` printed a secret: {leaked}"
        return done

    return run


def plan_for_children(cli: Runner, chunk_size: int = 500, run_date: str = "2026-11-27") -> None:
    """Plan `run_date` with the `none` submitter: manifests written, children left to the test."""
    done = cli(
        "plan",
        "--run-date",
        run_date,
        "--submitter",
        "none",
        env={"CHUNK_SIZE": str(chunk_size)},
    )
    assert done.returncode == 0, done.stderr


def run_together(argvs: list[list[str]], env: Mapping[str, str], timeout: float = 180) -> list[int]:
    """Start several `worthy-batch` processes at once; wait for all; return their exit codes."""
    children = [
        subprocess.Popen(
            [CLI, *argv],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    codes = []
    for child in children:
        out, err = child.communicate(timeout=timeout)
        if child.returncode != 0:
            sys.stderr.write(err)
        leaked = leaked_sentinels(out, err)
        assert not leaked, f"a child printed a secret: {leaked}"
        codes.append(child.returncode)
    return codes


@pytest.fixture(autouse=True)
def ledger_verifies(db: psycopg2.extensions.connection) -> Iterator[None]:
    """After every e2e test, the ledger passes `verify`'s checks."""
    yield
    found = violations(db)
    assert found == [], found
