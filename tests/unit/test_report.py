"""`build_report`: a run's report.json from its chunks' statuses and results (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from common.adapters.store.runs import InvalidRows, RunRecord
from common.domain.models import ChunkResult, Failure
from common.domain.statuses import ChunkStatus, Execution, RunStatus
from finalizer.service import MAX_LISTED_FAILURES, build_report
from finalizer.summary import reason_lines

RUN_ID = "XNYS-20261127"
STARTED = datetime(2026, 11, 27, 14, 40, tzinfo=UTC)
FINALIZED_AT = datetime(2026, 11, 27, 14, 52, 30, tzinfo=UTC)

SUCCEEDED, FAILED = ChunkStatus.SUCCEEDED, ChunkStatus.FAILED
PENDING, RUNNING = ChunkStatus.PENDING, ChunkStatus.RUNNING


def _run(**change: Any) -> RunRecord:
    fields: dict[str, Any] = {
        "run_id": RUN_ID,
        "market": "XNYS",
        "run_date": date(2026, 11, 27),
        "status": "submitted",
        "plans_due": 10,
        "invalid_plans": 1,
        "chunk_count": 2,
        "manifest_uri": f"s3://runs/recurring-investments/XNYS/2026-11-27/{RUN_ID}/run.json",
        "executor_job_id": "job-1",
        "finalizer_job_id": "job-2",
        "redrives": 0,
        "detail": None,
        "created_at": STARTED,
        "updated_at": STARTED,
        "finished_at": None,
    }
    return RunRecord(**{**fields, **change})


def _result(index: int, **change: Any) -> ChunkResult:
    fields: dict[str, Any] = {
        "run_id": RUN_ID,
        "chunk_index": index,
        "attempt": 1,
        "status": SUCCEEDED,
        "started_at": STARTED,
        "finished_at": STARTED + timedelta(seconds=2),
        "duration_ms": 2000,
        "items": 0,
        "purchased": 0,
        "skipped": 0,
        "failed": 0,
    }
    return ChunkResult(**{**fields, **change})


def _failures(count: int, start: int = 1) -> list[Failure]:
    return [
        Failure(plan_id=plan_id, status=Execution.FAILED, reason="provider_error")
        for plan_id in range(start, start + count)
    ]


def _chunks(*statuses: ChunkStatus) -> list[tuple[int, str, int]]:
    return [(index, status, 1) for index, status in enumerate(statuses)]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((SUCCEEDED,), RunStatus.SUCCEEDED),
        ((SUCCEEDED, SUCCEEDED, SUCCEEDED), RunStatus.SUCCEEDED),
        ((SUCCEEDED, FAILED), RunStatus.PARTIAL),
        ((SUCCEEDED, PENDING), RunStatus.PARTIAL),
        ((RUNNING, SUCCEEDED), RunStatus.PARTIAL),
        ((FAILED,), RunStatus.FAILED),
        ((FAILED, PENDING, RUNNING), RunStatus.FAILED),
        ((PENDING, PENDING), RunStatus.FAILED),
        ((), RunStatus.FAILED),  # two chunks planned, no row of them: nothing ran
    ],
)
def test_the_run_succeeds_only_when_every_chunk_did_and_is_partial_when_some_did(
    statuses: tuple[ChunkStatus, ...], expected: RunStatus
) -> None:
    report = build_report(_run(), _chunks(*statuses), {}, FINALIZED_AT)

    assert report["status"] == expected


def test_a_run_with_nothing_due_stays_succeeded_when_finalized_again() -> None:
    # The planner closes a day with nothing due itself; `finalize` run on it by hand must
    # not turn it into a failure.
    nothing = _run(plans_due=0, invalid_plans=0, chunk_count=0, status="succeeded")

    report = build_report(nothing, [], {}, FINALIZED_AT)

    assert report["status"] == RunStatus.SUCCEEDED
    assert report["chunks"] == {"total": 0, "succeeded": 0, "failed": [], "pending": []}


def test_chunks_are_counted_and_the_failed_and_unfinished_ones_listed_by_index() -> None:
    chunks = _chunks(SUCCEEDED, FAILED, PENDING, SUCCEEDED, RUNNING, FAILED)

    report = build_report(_run(), chunks, {}, FINALIZED_AT)

    assert report["chunks"] == {"total": 6, "succeeded": 2, "failed": [1, 5], "pending": [2, 4]}


def test_outcome_counts_and_reasons_are_summed_over_every_chunks_result() -> None:
    results = {
        0: _result(0, purchased=5, skipped=1, reasons={"amount_below_minimum": 1}),
        1: _result(
            1,
            status=FAILED,
            purchased=2,
            skipped=1,
            failed=3,
            reasons={"provider_error": 2, "price_unavailable": 1, "amount_below_minimum": 1},
        ),
    }

    report = build_report(_run(), _chunks(SUCCEEDED, FAILED), results, FINALIZED_AT)

    assert report["outcomes"] == {"purchased": 7, "skipped": 2, "failed": 3}
    assert report["reasons"] == {
        "amount_below_minimum": 2,
        "price_unavailable": 1,
        "provider_error": 2,
    }
    assert list(report["reasons"]) == sorted(report["reasons"])


def test_a_chunk_without_results_yet_adds_nothing_to_the_counts() -> None:
    results = {1: _result(1, purchased=4)}

    report = build_report(_run(), _chunks(PENDING, SUCCEEDED), results, FINALIZED_AT)

    assert report["outcomes"] == {"purchased": 4, "skipped": 0, "failed": 0}
    assert [t["chunk"] for t in report["chunk_timings"]] == [1]


def test_money_invested_is_summed_per_currency_exactly_and_written_as_decimal_strings() -> None:
    results = {
        0: _result(0, invested={"USD": Decimal("100.1000"), "JPY": Decimal("10000")}),
        1: _result(1, invested={"USD": Decimal("0.2000")}),
        2: _result(2, invested={"EUR": Decimal("0.0001")}),
    }

    report = build_report(_run(), _chunks(SUCCEEDED, SUCCEEDED, SUCCEEDED), results, FINALIZED_AT)

    # 100.1 + 0.2 in binary floating point would be 100.30000000000001.
    assert report["invested"] == {"EUR": "0.0001", "JPY": "10000", "USD": "100.3000"}


def test_api_calls_and_keys_skipped_for_a_spent_budget_are_summed_per_provider() -> None:
    results = {
        0: _result(0, api_calls={"finnhub": 3, "exchangerate": 1}),
        1: _result(
            1,
            api_calls={"finnhub": 2, "alphavantage": 4},
            quota_exhausted={"alphavantage": 2},
        ),
        2: _result(2, quota_exhausted={"alphavantage": 1, "finnhub": 5}),
    }

    report = build_report(_run(), _chunks(SUCCEEDED, SUCCEEDED, SUCCEEDED), results, FINALIZED_AT)

    assert report["api_calls"] == {"alphavantage": 4, "exchangerate": 1, "finnhub": 5}
    assert report["quota_exhausted"] == {"alphavantage": 3, "finnhub": 5}


def test_failures_are_listed_with_their_chunk_in_chunk_order() -> None:
    skipped = Failure(plan_id=9, status=Execution.SKIPPED, reason="plan_changed")
    results = {
        1: _result(1, failures=[skipped]),
        0: _result(0, failures=_failures(2, start=20)),
    }

    report = build_report(_run(), _chunks(SUCCEEDED, SUCCEEDED), results, FINALIZED_AT)

    listed = [(f["chunk"], f["plan_id"], f["status"], f["reason"]) for f in report["failures"]]
    assert listed == [
        (0, 20, "failed", "provider_error"),
        (0, 21, "failed", "provider_error"),
        (1, 9, "skipped", "plan_changed"),
    ]
    assert report["failures_total"] == 3


def test_the_failure_list_is_capped_but_the_total_counts_every_failure() -> None:
    results = {
        0: _result(0, failures=_failures(MAX_LISTED_FAILURES - 1)),
        1: _result(1, failures=_failures(5, start=MAX_LISTED_FAILURES)),
    }

    report = build_report(_run(), _chunks(SUCCEEDED, SUCCEEDED), results, FINALIZED_AT)

    assert len(report["failures"]) == MAX_LISTED_FAILURES
    assert report["failures"][-1] == {
        "chunk": 1,
        "plan_id": MAX_LISTED_FAILURES,
        "symbol": None,
        "status": "failed",
        "reason": "provider_error",
        "detail": None,
    }
    assert report["failures_total"] == MAX_LISTED_FAILURES + 4


def test_each_chunks_timings_are_reported_with_its_attempt_and_size() -> None:
    results = {
        0: _result(0, attempt=3, items=40, duration_ms=1234, timings_ms={"price_ms": 200}),
    }

    report = build_report(_run(), _chunks(SUCCEEDED), results, FINALIZED_AT)

    assert report["chunk_timings"] == [
        {"chunk": 0, "attempt": 3, "items": 40, "duration_ms": 1234, "price_ms": 200}
    ]


def test_the_report_names_its_run_and_carries_the_planners_counts() -> None:
    run = _run(plans_due=250, invalid_plans=3, redrives=2)

    report = build_report(run, _chunks(SUCCEEDED), {0: _result(0)}, FINALIZED_AT)

    assert (report["schema_version"], report["run_id"], report["market"]) == (1, RUN_ID, "XNYS")
    assert report["run_date"] == "2026-11-27"
    assert (report["plans_due"], report["invalid_plans"], report["redrives"]) == (250, 3, 2)
    assert report["finalized_at"] == "2026-11-27T14:52:30+00:00"  # the clock it was given


def test_a_run_the_planner_left_without_counts_reports_zeros() -> None:
    report = build_report(
        _run(plans_due=None, invalid_plans=None), _chunks(SUCCEEDED), {}, FINALIZED_AT
    )

    assert (report["plans_due"], report["invalid_plans"]) == (0, 0)


def test_results_written_before_symbols_and_details_were_recorded_still_finalize() -> None:
    old = (
        '{"schema_version": 1, "run_id": "XNYS-20261127", "chunk_index": 0, "attempt": 1, '
        '"status": "succeeded", "started_at": "2026-11-27T14:40:00+00:00", '
        '"finished_at": "2026-11-27T14:40:02+00:00", "duration_ms": 2000, "items": 2, '
        '"purchased": 1, "skipped": 0, "failed": 1, "reasons": {"price_unavailable": 1}, '
        '"failures": [{"plan_id": 5, "status": "failed", "reason": "price_unavailable"}]}'
    )
    result = ChunkResult.model_validate_json(old)

    report = build_report(_run(chunk_count=1), _chunks(SUCCEEDED), {0: result}, FINALIZED_AT)

    assert report["failures"] == [
        {
            "chunk": 0,
            "plan_id": 5,
            "symbol": None,
            "status": "failed",
            "reason": "price_unavailable",
            "detail": None,
        }
    ]
    assert report["invalid_rows"] == {"count": 0, "reasons": {}, "listed": []}


def test_a_chunk_that_did_not_succeed_is_listed_with_its_attempts_and_last_error() -> None:
    report = build_report(
        _run(),
        [(0, SUCCEEDED, 1), (1, FAILED, 3)],
        {0: _result(0)},
        FINALIZED_AT,
        chunk_errors={1: "exit 65: manifest s3://x rejected: sha256 mismatch"},
    )
    assert report["chunk_errors"] == [
        {
            "chunk": 1,
            "status": "failed",
            "attempts": 3,
            "reason": "exit 65: manifest s3://x rejected: sha256 mismatch",
        }
    ]


def test_the_reason_lines_name_invalid_rows_plans_not_bought_and_failed_chunks() -> None:
    failure = Failure(
        plan_id=5,
        status=Execution.FAILED,
        reason="provider_error",
        symbol="MSFT",
        detail="finnhub: HTTP 429 (attempts: 4); alphavantage: throttled (attempts: 4)",
    )
    report = build_report(
        _run(),
        [(0, SUCCEEDED, 1), (1, FAILED, 2)],
        {0: _result(0, failures=[failure])},
        FINALIZED_AT,
        invalid=InvalidRows({"invalid_plan: empty symbol": 2}, [(8, "", "invalid_plan: x")]),
        chunk_errors={1: "exit 75: S3 unavailable"},
    )

    assert reason_lines(report) == [
        "invalid rows, skipped (stay due until the app fixes them): 2",
        "  2 x invalid_plan: empty symbol",
        "not bought: 1 plan(s)",
        "  plan 5 MSFT: failed provider_error - finnhub: HTTP 429 (attempts: 4); "
        "alphavantage: throttled (attempts: 4)",
        "chunk 1 failed after 2 attempts: exit 75: S3 unavailable",
    ]
    assert reason_lines({"failures": [], "failures_total": 0}) == []  # an old report


def test_a_run_planned_after_its_day_had_passed_is_reported_as_a_catch_up() -> None:
    # Planned at 09:40 New York on its own day: not a catch-up.
    on_time = build_report(_run(), [], {}, FINALIZED_AT)
    # Planned the next morning in New York.
    late = _run(created_at=datetime(2026, 11, 28, 14, 40, tzinfo=UTC))
    caught_up = build_report(late, [], {}, FINALIZED_AT)
    # 23:30 New York on the 27th is 04:30 UTC on the 28th: the market's date decides.
    same_day = build_report(
        _run(created_at=datetime(2026, 11, 28, 4, 30, tzinfo=UTC)), [], {}, FINALIZED_AT
    )
    assert on_time["catch_up"] is False
    assert caught_up["catch_up"] is True
    assert same_day["catch_up"] is False
    assert reason_lines(caught_up)[0].startswith("catch-up run: 2026-11-27 was already past")
    assert not any(line.startswith("catch-up") for line in reason_lines(on_time))
