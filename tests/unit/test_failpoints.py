"""Fail points: parsing the spec, and the pause that a test ends with SIGUSR1."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from common.platform import failpoints


@pytest.fixture(autouse=True)
def _disarmed() -> Iterator[None]:
    yield
    failpoints.configure(None)


def test_an_unarmed_fail_point_does_nothing() -> None:
    failpoints.configure("planner.after_claim")
    failpoints.failpoint("executor.after_stage")  # not armed: returns


def test_a_pause_waits_out_its_seconds_at_the_nth_hit_only() -> None:
    failpoints.configure("x@2=pause:0.2")
    started = time.monotonic()
    failpoints.failpoint("x")
    assert time.monotonic() - started < 0.1
    failpoints.failpoint("x")
    assert time.monotonic() - started >= 0.2
    again = time.monotonic()
    failpoints.failpoint("x")
    assert time.monotonic() - again < 0.1


def test_sigusr1_ends_a_pause_early_and_is_not_fatal() -> None:
    failpoints.configure("x=pause:30")
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1))
    started = time.monotonic()
    timer.start()
    failpoints.failpoint("x")
    assert time.monotonic() - started < 5
    failpoints.configure(None)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # handler put back


def test_a_pause_on_another_thread_is_ended_by_sigusr1_too() -> None:
    failpoints.configure("x=pause:30")
    paused = threading.Thread(target=failpoints.failpoint, args=("x",))
    started = time.monotonic()
    paused.start()
    time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGUSR1)
    paused.join(timeout=5)
    assert not paused.is_alive()
    assert time.monotonic() - started < 5
