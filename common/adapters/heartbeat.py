"""The run's heartbeat: one metric when a market day's run reaches a final status.

The planner emits it for a closed day, a day with nothing due and a run already
complete; the finalizer for every run it closes. The stack's dashboard graphs it;
what pages when a market day's run is missing or unfinished is the watchdog job
(`worthy-batch watchdog`, on its own schedule), not an alarm on this metric.
"""

from __future__ import annotations

from datetime import date

from common.domain.run_key import RunKey
from common.platform.logging import emit_metrics

HEARTBEAT_METRIC = "run_finished"


def emit_heartbeat(key: RunKey, today: date) -> bool:
    """Emit the heartbeat when the run is of `today`, the market's date in its own time
    zone (a rerun of an old day proves nothing about today's); True when it was emitted."""
    if key.run_date != today:
        return False
    emit_metrics({HEARTBEAT_METRIC: 1}, market=key.market)
    return True
