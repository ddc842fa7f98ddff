"""Is a quote (or a rate table) good enough to buy at? Pure functions of the quote and the dates.

docs/design.md section 6: a price is used only if it is > 0, finite, and dated no more
than MAX_QUOTE_AGE_DAYS calendar days before the run date, counted in the
market's own time zone. Quotes dated after the run date are fine (a rerun a
day later); a time more than FUTURE_TOLERANCE after now is a provider's bug.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal

from common.adapters.marketdata.quotes import FxRates, Quote

FUTURE_TOLERANCE = timedelta(hours=1)


def quote_problem(
    quote: Quote, *, run_date: date, tz: tzinfo, max_age_days: int, now: datetime
) -> str | None:
    """Why `quote` must not be used, or None when it is good."""
    return price_problem(quote.price) or time_problem(
        quote.time, run_date=run_date, tz=tz, max_age_days=max_age_days, now=now
    )


def price_problem(price: Decimal) -> str | None:
    """Why `price` is not a usable price, or None."""
    if not price.is_finite():
        return f"price {price} is not finite"
    if price <= 0:
        return f"price {price} is not positive"
    return None


def time_problem(
    when: datetime, *, run_date: date, tz: tzinfo, max_age_days: int, now: datetime
) -> str | None:
    """Why an instant is too old, too new or ambiguous for `run_date`, or None."""
    if when.tzinfo is None or when.utcoffset() is None:
        return "quote time has no time zone"
    if when > now + FUTURE_TOLERANCE:
        return f"quote time {when.isoformat()} is in the future"
    day = when.astimezone(tz).date()
    oldest = run_date - timedelta(days=max_age_days)
    if day < oldest:
        return f"quote of {day.isoformat()} is older than {max_age_days} day(s) before {run_date}"
    return None


def usable_rates(rates: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """The rates that are finite and positive; a bad entry must not price anything."""
    return {code: rate for code, rate in rates.items() if price_problem(rate) is None}


def fx_problem(
    rates: FxRates, *, run_date: date, tz: tzinfo, max_age_days: int, now: datetime
) -> str | None:
    """Why a rate table must not be used, or None."""
    if not usable_rates(rates.rates):
        return "no usable rate"
    return time_problem(rates.time, run_date=run_date, tz=tz, max_age_days=max_age_days, now=now)
