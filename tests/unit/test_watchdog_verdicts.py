"""The watchdog's verdicts (ops/watchdog.py `judge`) from run and chunk records alone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from common.adapters.store.runs import ChunkRecord, RunRecord
from common.domain.run_key import RunKey
from ops.watchdog import judge, watch

NEW_YORK = ZoneInfo("America/New_York")
DAY = date(2026, 12, 4)
AT = datetime(2026, 12, 4, 14, 35, tzinfo=UTC)  # 09:35 in New York


def _run(status: str, detail: str | None = None) -> RunRecord:
    return RunRecord(
        "XNYS-20261204", "XNYS", DAY, status, 10, 0, 2, "s3://b/run.json",
        "job-1", "job-2", 0, detail, AT, AT, AT if status in ("succeeded", "partial") else None,
    )  # fmt: skip


def _chunk(index: int, status: str) -> ChunkRecord:
    return ChunkRecord("XNYS-20261204", index, 5, 1, status, 1, 0, 0, 0, None, None, None)


def test_a_partial_run_is_final_and_says_the_finalizer_s_alarm_covers_it() -> None:
    verdict = judge(RunKey("XNYS", DAY), None, _run("partial"), [], NEW_YORK)
    assert verdict.ok
    assert verdict.line.startswith("XNYS-20261204 is final (partial) since 09:35 EST")
    assert "run_incomplete" in verdict.line


def test_a_planner_that_stopped_before_submitting_says_to_plan_again() -> None:
    verdict = judge(RunKey("XNYS", DAY), None, _run("manifested"), [], NEW_YORK)
    assert not verdict.ok
    assert "is manifested since 09:35 EST" in verdict.line
    assert "worthy-batch submit --run-date 2026-12-04 --market XNYS" in verdict.line


def test_a_submitted_run_counts_failed_chunks_too() -> None:
    chunks = [_chunk(0, "succeeded"), _chunk(1, "failed"), _chunk(2, "running")]
    verdict = judge(RunKey("XNYS", DAY), None, _run("submitted"), chunks, NEW_YORK)
    assert not verdict.ok
    assert "(1 of 3 chunks succeeded, 1 failed)" in verdict.line


def test_without_a_date_the_day_is_today_in_new_york_and_a_saturday_needs_no_database() -> None:
    def no_database() -> None:
        raise AssertionError("a closed day reads nothing")

    late_friday_utc = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)  # still Friday in New York
    saturday = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)
    assert watch(no_database, "XNYS", None, lambda: saturday).line == (  # type: ignore[arg-type]
        "XNYS is closed on 2026-12-05 (weekend); no run is due"
    )
    with pytest.raises(AssertionError, match="reads nothing"):
        watch(no_database, "XNYS", None, lambda: late_friday_utc)  # type: ignore[arg-type]
