"""`explain`'s next date and why (pure): holiday rolls, month-end caps, plans not bought."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from common.domain.calendar import calendar_for
from ops.explain import next_date_story, render

XNYS = calendar_for("XNYS")
TODAY = date(2026, 11, 20)


def _plan(**change: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": 7,
        "user_id": "u7",
        "symbol": "AAPL",
        "exchange": "XNYS",
        "asset_currency": "USD",
        "amount": Decimal("100.0000"),
        "currency": "USD",
        "fee": Decimal("0.0000"),
        "frequency": "monthly",
        "start_date": date(2026, 10, 26),
        "end_date": None,
        "max_runs": None,
        "runs_completed": 1,
        "next_run_date": date(2026, 11, 27),
        "fractional": True,
        "status": "active",
        "version": 1,
        "created_at": datetime(2026, 10, 1, tzinfo=UTC),
        "updated_at": datetime(2026, 10, 26, 15, tzinfo=UTC),
    }
    return {**row, **change}


def test_a_date_rolled_over_a_holiday_names_the_holiday() -> None:
    story = next_date_story(_plan(), XNYS, TODAY)
    assert story == [
        "2026-11-27 (upcoming)",
        "nominal 2026-11-26 is Thanksgiving Day (XNYS closed) -> rolled to 2026-11-27",
    ]


def test_a_month_end_anchor_says_it_was_capped_then_rolled_over_the_weekend() -> None:
    plan = _plan(start_date=date(2026, 1, 31), next_run_date=date(2026, 3, 2))
    story = next_date_story(plan, XNYS, date(2026, 2, 20))
    assert story == [
        "2026-03-02 (upcoming)",
        "anchored on the 31st, capped at 2026-02-28",
        "nominal 2026-02-28 is a Saturday (weekend) -> rolled to 2026-03-02",
    ]


def test_a_date_past_today_is_due_now() -> None:
    (first, *_) = next_date_story(_plan(), XNYS, date(2026, 12, 3))
    assert first == "2026-11-27 (due now: the next market day's run buys it once)"


def test_a_date_off_the_schedule_says_the_app_set_it() -> None:
    story = next_date_story(_plan(next_run_date=date(2026, 11, 30)), XNYS, TODAY)
    assert story[1].startswith("2026-11-30 is not on the schedule anchored on 2026-10-26")


def test_a_paused_plan_has_no_next_date() -> None:
    assert next_date_story(_plan(status="paused"), XNYS, TODAY) == [
        "none: the plan is paused, so no run buys it"
    ]


def test_an_invalid_plan_is_named_with_its_problem() -> None:
    plan = _plan(fee=Decimal("200"))
    story = next_date_story(plan, XNYS, TODAY)
    assert story == [
        "2026-11-27, but the row is invalid (fee must be less than amount): every run skips "
        "it until the app fixes the row"
    ]
    lines = render(plan, [], story)
    assert "  invalid: fee must be less than amount" in lines
    assert lines[-1] == "  executions: none yet (no run has evaluated this plan)"


def test_a_row_with_missing_columns_still_renders() -> None:
    plan = _plan(frequency=None, start_date=None, exchange="NOPE", symbol=None)
    story = next_date_story(plan, None, TODAY)
    assert story[0].endswith("every run skips it until the app fixes the row")
    assert render(plan, [], story)[0] == "plan 7  active  user u7  None on NOPE (quoted in USD)"
