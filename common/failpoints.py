"""Fail points: named places where a test can make the process die on purpose.

Off unless `WORTHY_FAILPOINTS` names them (read once, at the process edge):

    WORTHY_FAILPOINTS="planner.after_manifests"        SIGKILL there, every time
    WORTHY_FAILPOINTS="executor.after_batch_commit@3"  SIGKILL the 3rd time it is reached

Crash tests use them to stop a real process at an exact step (after the
claim, between two batch commits...) and check that the rerun converges.
SIGKILL, not an exception: nothing gets to clean up, as in a real crash.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_armed: dict[str, int] = {}
_seen: Counter[str] = Counter()


def configure(spec: str | None) -> None:
    """Arm the fail points named in `spec` (comma-separated `name` or `name@n`)."""
    _armed.clear()
    _seen.clear()
    for item in (spec or "").split(","):
        name, _, nth = item.strip().partition("@")
        if name:
            _armed[name] = int(nth) if nth.isdigit() else 1


def failpoint(name: str) -> None:
    """Die here if this fail point is armed and this is its n-th hit."""
    if name not in _armed:
        return
    _seen[name] += 1
    if _seen[name] >= _armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
