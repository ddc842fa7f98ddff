"""`worthy-batch explain PLAN_ID`: why a plan was (or was not) charged, in one command.

The plan's schedule, its recent executions with status and reason (and what
was bought), and its next date with why: the nominal date its anchor gives,
the holiday or weekend it rolled over, the month-end cap. The query is the
store's (common/adapters/store/plan_history.py); everything else here is formatting,
pure, on the rows it returns.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from typing import Any

from common.adapters.store.plan_history import PlanHistory
from common.domain.calendar import MarketCalendar, calendar_for
from common.domain.errors import ConfigError, UnsupportedMarket
from common.domain.models import BIGINT_MAX
from common.domain.schedule import Frequency, nominal_date
from common.domain.statuses import Execution, Reason
from common.domain.validation import plan_problem
from ops.root import OpsRoot

# What each reason means for the person asking "why was I not charged?".
MEANINGS: dict[str, str] = {
    Reason.AMOUNT_BELOW_MINIMUM: "the amount less fee buys less than the smallest share "
    "at that day's price: not charged, and the schedule moved on",
    Reason.PRICE_UNAVAILABLE: "no provider had a usable price: not charged, still due "
    "(the next run tries again)",
    Reason.PROVIDER_ERROR: "the price providers did not answer: not charged, still due "
    "(retried, then the next run tries again)",
    Reason.PLAN_CHANGED: "edited, paused or cancelled after that day's snapshot: not "
    "charged; the next run buys the plan as it is now",
    Reason.INVALID_PLAN: "the plan's row is invalid: not charged until the app fixes it",
}


def meaning(reason: str | None) -> str:
    if not reason:
        return ""
    return MEANINGS.get(reason.partition(":")[0], "")


def next_date_story(
    plan: dict[str, Any], calendar: MarketCalendar | None, today: date
) -> list[str]:
    """Why the plan's next date is the one it is: lines of plain text (pure)."""
    if plan["status"] != "active":
        return [f"none: the plan is {plan['status']}, so no run buys it"]
    problem = plan_problem(plan)
    due: date | None = plan["next_run_date"]
    if problem is not None:
        return [
            f"{due or 'none'}, but the row is invalid ({problem}): every run skips it "
            "until the app fixes the row"
        ]
    assert due is not None and calendar is not None  # plan_problem checked both
    when = "due now: the next market day's run buys it once" if due <= today else "upcoming"
    lines = [f"{due} ({when})"]
    anchor, frequency = plan["start_date"], Frequency(plan["frequency"])
    nominal = nominal_rolling_to(anchor, frequency, due, calendar)
    if nominal is None:
        lines.append(
            f"{due} is not on the schedule anchored on {anchor} (the app set it); the batch "
            "buys it then, and follows the schedule after"
        )
        return lines
    by_month = frequency in (Frequency.MONTHLY, Frequency.QUARTERLY, Frequency.YEARLY)
    if by_month and nominal.day < anchor.day:
        lines.append(f"anchored on the {ordinal(anchor.day)}, capped at {nominal}")
    if nominal != due:
        closed = calendar.closure_name(nominal)
        why = (
            f"a {nominal:%A} (weekend)"
            if closed == "weekend"
            else f"{closed} ({calendar.mic} closed)"
        )
        lines.append(f"nominal {nominal} is {why} -> rolled to {due}")
    else:
        lines.append(f"nominal {nominal} is a market day on {calendar.mic}: no roll")
    return lines


def nominal_rolling_to(
    anchor: date, frequency: Frequency, due: date, calendar: MarketCalendar
) -> date | None:
    """The nominal date that rolls forward to `due`: `due` itself when it is one, else the
    latest nominal before it that rolls there; None when no nominal date does."""
    found, k = None, 0
    while True:
        nominal = nominal_date(anchor, frequency, k)
        if nominal > due:
            return found
        if calendar.roll_forward(nominal) == due:
            found = nominal
        k += 1


def ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def schedule_lines(plan: dict[str, Any]) -> list[str]:
    fractional = "fractional shares" if plan["fractional"] else "whole shares only"
    runs = f"{plan['runs_completed']} run(s) completed"
    runs += f" of max_runs {plan['max_runs']}" if plan["max_runs"] is not None else ""
    end = f"end_date {plan['end_date']}" if plan["end_date"] else "no end_date"
    return [
        f"plan {plan['id']}  {plan['status']}  user {plan['user_id']}  "
        f"{plan['symbol']} on {plan['exchange']} (quoted in {plan['asset_currency']})",
        f"  schedule: {plan['frequency']}, anchored on start_date {plan['start_date']}",
        f"  each run: {plan['amount']} {plan['currency']}, fee {plan['fee']}, {fractional}",
        f"  {runs}, {end}; version {plan['version']}, updated {_when(plan['updated_at'])}",
    ]


def execution_line(e: dict[str, Any], symbol: str) -> str:
    where = f"run {e['run_id']}" + (
        f" chunk {e['chunk_index']}" if e["chunk_index"] is not None else ""
    )
    tries = f"{e['attempts']} attempt{'s' if e['attempts'] != 1 else ''}"
    if e["status"] == Execution.PURCHASED:
        what = (
            f"bought {e['quantity']} {symbol} at {e['price']} {e['price_currency']} "
            f"for {e['amount']} {e['currency']} (fee {e['fee']}), traded {e['trade_date']}"
        )
    else:
        what = e["reason"] or "-"
    return f"    {e['scheduled_date']}  {e['status']:<9} {what}  ({where}, {tries})"


def render(plan: dict[str, Any], executions: list[dict[str, Any]], story: list[str]) -> list[str]:
    """Everything `explain` prints, line by line (pure)."""
    lines = schedule_lines(plan)
    problem = plan_problem(plan)
    if problem is not None:
        lines.append(f"  invalid: {problem}")
    lines.append(f"  next date: {story[0]}")
    lines.extend(f"    {line}" for line in story[1:])
    if not executions:
        lines.append("  executions: none yet (no run has evaluated this plan)")
        return lines
    lines.append(f"  recent executions, newest first ({len(executions)} shown):")
    for e in executions:
        lines.append(execution_line(e, plan["symbol"]))
        why = meaning(e["reason"]) if e["status"] != Execution.PURCHASED else ""
        if why:
            lines.append(f"      {why}")
    return lines


def as_json(
    plan: dict[str, Any], executions: list[dict[str, Any]], story: list[str]
) -> dict[str, Any]:
    return {
        "plan": plan,
        "invalid": plan_problem(plan),
        "next": {"date": plan["next_run_date"], "why": story},
        "executions": [{**e, "meaning": meaning(e["reason"]) or None} for e in executions],
    }


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else "-"


def _calendar(exchange: Any) -> MarketCalendar | None:
    try:
        return calendar_for(exchange) if isinstance(exchange, str) else None
    except UnsupportedMarket:
        return None


def run(args: argparse.Namespace, root: OpsRoot) -> int:
    conn = root.connect()
    try:
        history = PlanHistory(conn)
        # Past a BIGINT no row can have the id (and PostgreSQL would refuse the number).
        plan = history.plan(args.plan_id) if 0 < args.plan_id <= BIGINT_MAX else None
        if plan is None:
            raise ConfigError(
                {"PLAN_ID": f"no plan {args.plan_id} in recurring_investments of this database"}
            )
        executions = history.executions(args.plan_id, args.limit)
    finally:
        conn.close()
    calendar = _calendar(plan["exchange"])
    today = calendar.today(datetime.now(UTC)) if calendar else datetime.now(UTC).date()
    story = next_date_story(plan, calendar, today)
    if args.json:
        json.dump(as_json(plan, executions, story), sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(render(plan, executions, story)) + "\n")
    return 0
