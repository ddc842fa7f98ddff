"""Fail points: named places where a test can make the process die (or stall) on purpose.

Off unless `WORTHY_FAILPOINTS` names them (read once, at the process edge):

    WORTHY_FAILPOINTS="planner.after_manifests"        SIGKILL there, every time
    WORTHY_FAILPOINTS="executor.after_batch_commit@3"  SIGKILL the 3rd time it is reached
    WORTHY_FAILPOINTS="executor.before_batch_commit@2=pause:30"
                                                       stall there the 2nd time, until SIGUSR1
                                                       (or 30 s)

Crash tests use them to stop a real process at an exact step (after the
claim, between two batch commits...) and check that the rerun converges.
SIGKILL, not an exception: nothing gets to clean up, as in a real crash.
A pause logs "fail point NAME: pausing" first, so a test that reads the
output knows the process is there, breaks something underneath it
(terminates its database connection, stops S3), then sends SIGUSR1 to let
it carry on.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from dataclasses import dataclass

from common.platform.logging import get_logger

log = get_logger(__name__)

KILL = "kill"
PAUSE = "pause"


@dataclass(frozen=True)
class _Action:
    nth: int
    kind: str = KILL
    seconds: float = 0.0


_armed: dict[str, _Action] = {}
_seen: Counter[str] = Counter()
_seen_lock = threading.Lock()
_resumed = threading.Event()


def configure(spec: str | None) -> None:
    """Arm the fail points in `spec`: comma-separated `name[@n][=kill|=pause:SECONDS]`."""
    _armed.clear()
    _seen.clear()
    for item in (spec or "").split(","):
        point, _, action = item.strip().partition("=")
        name, _, nth = point.partition("@")
        if not name:
            continue
        count = int(nth) if nth.isdigit() else 1
        kind, _, seconds = action.partition(":")
        if kind == PAUSE:
            try:
                pause = float(seconds)
            except ValueError:
                pause = 1.0
            _armed[name] = _Action(count, PAUSE, pause)
        else:
            _armed[name] = _Action(count)
    pausing = any(a.kind == PAUSE for a in _armed.values())
    if threading.current_thread() is threading.main_thread():
        # Installed here, on the main thread (the only one that may): a pause can
        # then happen on any thread, such as the executor's batch writers.
        signal.signal(signal.SIGUSR1, _resume if pausing else signal.SIG_DFL)


def _resume(*_: object) -> None:
    _resumed.set()


def failpoint(name: str) -> None:
    """Die (or pause) here if this fail point is armed and this is its n-th hit."""
    action = _armed.get(name)
    if action is None:
        return
    with _seen_lock:  # batch writers hit the same points from several threads
        _seen[name] += 1
        hits = _seen[name]
    if action.kind == PAUSE:
        if hits == action.nth:
            _pause(name, action.seconds)
        return
    if hits >= action.nth:
        os.kill(os.getpid(), signal.SIGKILL)


def _pause(name: str, seconds: float) -> None:
    """Wait until SIGUSR1 (its handler was installed by `configure`) or `seconds` pass."""
    _resumed.clear()
    log.warning("fail point %s: pausing up to %.1fs, until SIGUSR1", name, seconds)
    _resumed.wait(seconds)
