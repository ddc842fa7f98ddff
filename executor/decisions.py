"""Deciding each plan's outcome from its snapshot and the run's prices (no I/O).

Gather (the chunk, the prices) -> decide (here) -> apply (the ledger).
"""

from __future__ import annotations

import functools
from datetime import date
from decimal import Decimal
from typing import Any

from common.adapters.marketdata.quotes import Price, Priced, PriceFailure
from common.domain.calendar import MarketCalendar
from common.domain.models import PlanSnapshot
from common.domain.outcomes import Outcome
from common.domain.schedule import Frequency, next_run_date
from common.domain.statuses import Decision, Reason
from common.domain.validation import invalid_plan_reason
from executor.sizing import Purchase, size_purchase, too_large_to_record

ONE = Decimal(1)


@functools.lru_cache(maxsize=65_536)
def following_date(
    anchor: date, frequency: Frequency, run_date: date, calendar: MarketCalendar
) -> date:
    """Cached: many plans share an anchor and frequency, and the answer is pure."""
    return next_run_date(anchor, frequency, run_date, calendar)


def decide(
    plan: PlanSnapshot,
    price: Priced,
    fx: Priced | None,
    *,
    run_date: date,
    share_decimals: int,
    calendar: MarketCalendar,
) -> Outcome:
    """Buy, skip (amount below minimum, or too large to record) or fail (no usable price
    or rate). `calendar` is the plan's exchange's: it dates the plan's next run."""
    if isinstance(price, PriceFailure):
        return _outcome(plan, Decision.FAIL, price.reason)
    if price.currency and price.currency != plan.asset_currency:
        return _outcome(plan, Decision.FAIL, Reason.PRICE_UNAVAILABLE)
    if plan.currency == plan.asset_currency:
        fx_rate = ONE
    elif isinstance(fx, Price):
        fx_rate = fx.value
    else:
        return _outcome(
            plan, Decision.FAIL, fx.reason if fx is not None else Reason.PRICE_UNAVAILABLE
        )
    following = following_date(plan.start_date, plan.frequency, run_date, calendar)
    sized = size_purchase(
        amount=plan.amount,
        fee=plan.fee,
        fx_rate=fx_rate,
        price=price.value,
        share_decimals=share_decimals,
        fractional=plan.fractional,
    )
    if not isinstance(sized, Purchase):
        return _outcome(plan, Decision.BELOW_MINIMUM, sized.reason, next_run_date=following)
    too_large = too_large_to_record(sized)
    if too_large:
        # Not bought and stays due, like any invalid plan; one such plan must not make
        # its whole write batch overflow a column.
        return _outcome(plan, Decision.INVALID, invalid_plan_reason(too_large))
    return _outcome(
        plan,
        Decision.PURCHASE,
        None,
        next_run_date=following,
        quantity=sized.quantity,
        price=price.value,
        fx_rate=fx_rate,
        cost=sized.cost_basis_delta,
        price_source=price.source,
        price_time=price.time,
    )


def _outcome(plan: PlanSnapshot, outcome: Decision, reason: str | None, **purchase: Any) -> Outcome:
    return Outcome(
        plan_id=plan.plan_id,
        scheduled_date=plan.scheduled_date,
        version=plan.version,
        outcome=outcome,
        reason=reason,
        user_id=plan.user_id,
        symbol=plan.symbol,
        exchange=plan.exchange,
        asset_currency=plan.asset_currency,
        amount=plan.amount,
        currency=plan.currency,
        fee=plan.fee,
        **purchase,
    )
