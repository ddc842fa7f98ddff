"""What the executor decided for one plan (pure data; the ledger writes it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from common.domain.statuses import Decision


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the executor decided for one plan, before the database has its say."""

    plan_id: int
    scheduled_date: date
    version: int
    outcome: Decision
    reason: str | None
    user_id: str
    symbol: str
    exchange: str
    asset_currency: str
    amount: Decimal
    currency: str
    fee: Decimal
    next_run_date: date | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    fx_rate: Decimal | None = None
    cost: Decimal | None = None
    price_source: str | None = None
    price_time: datetime | None = None
