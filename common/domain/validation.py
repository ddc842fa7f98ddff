"""Never trust a row: checks shared by the planner (rows from the app's table)
and the chunk-line model (lines read back from S3).

Each check returns None when the value is fine, else a short reason. The
planner records a failing plan as `skipped` with `invalid_plan: <reason>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from common.domain.calendar import SUPPORTED_MICS
from common.domain.currencies import ISO_4217
from common.domain.schedule import FREQUENCIES
from common.domain.statuses import Reason

SYMBOL_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,19}")
MAX_AMOUNT = Decimal("1e16")  # NUMERIC(20,4) holds less than this
_ECHO_LIMIT = 12


@dataclass(frozen=True, slots=True)
class InvalidPlan:
    plan_id: int
    reason: str  # "invalid_plan: <why>"
    scheduled_date: date | None = None


def _echo(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= _ECHO_LIMIT else text[:_ECHO_LIMIT] + "...")


def check_amount(amount: object, fee: object) -> str | None:
    if not isinstance(amount, Decimal) or not amount.is_finite():
        return "amount is missing or not a number"
    if amount <= 0:
        return "amount must be positive"
    if amount >= MAX_AMOUNT:
        return "amount is too large"
    if not isinstance(fee, Decimal) or not fee.is_finite():
        return "fee is missing or not a number"
    if fee < 0:
        return "fee must not be negative"
    if fee >= amount:
        return "fee must be less than amount"
    return None


def check_currency(code: object, field: str = "currency") -> str | None:
    if code not in ISO_4217:
        return f"unknown {field} {_echo(code)}"
    return None


def check_symbol(symbol: object) -> str | None:
    if not isinstance(symbol, str) or not symbol.strip():
        return "empty symbol"
    if not SYMBOL_PATTERN.fullmatch(symbol):
        return "malformed symbol"
    return None


def check_frequency(frequency: object) -> str | None:
    if frequency not in FREQUENCIES:
        return f"unknown frequency {_echo(frequency)}"
    return None


def check_exchange(exchange: object) -> str | None:
    if exchange not in SUPPORTED_MICS:
        return f"unsupported exchange {_echo(exchange)}"
    return None


_REQUIRED = ("user_id", "start_date", "next_run_date", "version", "fractional")


def plan_problem(row: Mapping[str, Any]) -> str | None:
    """Why a row of `recurring_investments` cannot be bought, or None when it can."""
    for column in _REQUIRED:
        if row.get(column) is None or row.get(column) == "":
            return f"{column} is missing"
    return (
        check_symbol(row.get("symbol"))
        or check_exchange(row.get("exchange"))
        or check_amount(row.get("amount"), row.get("fee"))
        or check_currency(row.get("currency"))
        or check_currency(row.get("asset_currency"), "asset currency")
        or check_frequency(row.get("frequency"))
    )


def invalid_plan_reason(problem: str) -> str:
    return f"{Reason.INVALID_PLAN}: {problem}"
