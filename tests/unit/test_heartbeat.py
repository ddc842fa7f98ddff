"""The run's heartbeat: the metric the stack's dashboard graphs when a day's run ends."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

from common.adapters.heartbeat import HEARTBEAT_METRIC, emit_heartbeat
from common.domain.calendar import today_at
from common.domain.run_key import RunKey
from common.platform.logging import METRICS_NAMESPACE, setup_logging

# 2026-12-01 20:00 in New York is already 2026-12-02 in UTC.
EVENING = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
TODAY = today_at("XNYS", EVENING)


def test_a_run_of_today_in_the_markets_time_zone_beats_once_as_an_emf_metric() -> None:
    stream = io.StringIO()
    setup_logging("json", stream)
    assert emit_heartbeat(RunKey("XNYS", date(2026, 12, 1)), TODAY)
    (line,) = stream.getvalue().splitlines()
    document = json.loads(line)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == METRICS_NAMESPACE
    assert directive["Dimensions"] == [["market"]]
    assert directive["Metrics"] == [{"Name": HEARTBEAT_METRIC, "Unit": "Count"}]
    assert (document["market"], document[HEARTBEAT_METRIC]) == ("XNYS", 1)


def test_a_run_of_another_day_does_not_beat_for_today() -> None:
    stream = io.StringIO()
    setup_logging("json", stream)
    assert not emit_heartbeat(RunKey("XNYS", date(2026, 12, 2)), TODAY)
    assert not emit_heartbeat(RunKey("XNYS", date(2026, 11, 27)), TODAY)
    assert stream.getvalue() == ""
