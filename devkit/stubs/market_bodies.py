"""Deterministic prices and rates for the stub, and each provider's real response shapes.

Prices come from sha256(seed:symbol) unless a table (or CSV) names them, so a
test knows the price each provider will quote. Rates are realistic for the
major currencies and derived from the hash for the other ISO 4217 codes.
JSON is written from Decimals directly: the stub never rounds through floats.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from common.domain.currencies import ISO_4217

CENT = Decimal("0.01")

# Units per 1 USD, roughly as of late 2026; enough to look like real rates.
USD_RATES: dict[str, Decimal] = {
    code: Decimal(rate)
    for code, rate in {
        "USD": "1",
        "EUR": "0.9208",
        "JPY": "151.23",
        "GBP": "0.7912",
        "CHF": "0.8823",
        "CAD": "1.3571",
        "AUD": "1.5302",
        "NZD": "1.6744",
        "SEK": "10.4312",
        "NOK": "10.6621",
        "DKK": "6.8712",
        "HKD": "7.8123",
        "SGD": "1.3398",
        "CNY": "7.2381",
        "INR": "83.412",
        "MXN": "17.0523",
        "BRL": "4.9712",
        "ZAR": "18.7231",
        "KRW": "1331.52",
        "PLN": "3.9821",
    }.items()
}


def _digest(seed: str, text: str) -> int:
    return int(hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()[:12], 16)


def seeded_price(seed: str, symbol: str) -> Decimal:
    """A price between 1.00 and 999.99, fixed by the seed and the symbol."""
    return (Decimal(_digest(seed, symbol) % 99_900 + 100) * CENT).quantize(CENT)


def usd_rate(seed: str, code: str) -> Decimal:
    """Units of `code` per 1 USD: the table's, or one fixed by the seed (0.1 to 1000)."""
    if code in USD_RATES:
        return USD_RATES[code]
    return Decimal(_digest(seed, code) % 9_999_000 + 1_000) / Decimal(10_000)


def rates_from(seed: str, base: str) -> dict[str, Decimal]:
    """Units of every known currency per 1 `base` (8 significant digits, like the real API)."""
    per_usd = usd_rate(seed, base)
    with localcontext() as ctx:
        ctx.prec = 8
        return {
            code: Decimal(1) if code == base else usd_rate(seed, code) / per_usd
            for code in sorted(ISO_4217)
        }


def load_prices_csv(path: str | Path) -> dict[str, Decimal]:
    """`symbol,price` rows (a header row is skipped) as a price table."""
    table: dict[str, Decimal] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) < 2 or row[0].strip().lower() == "symbol":
                continue
            table[row[0].strip().upper()] = Decimal(row[1].strip())
    return table


def finnhub_quote(price: Decimal, when: datetime) -> dict[str, Any]:
    """Finnhub `/quote`: c (current), d, dp, h, l, o, pc (previous close), t (unix seconds)."""
    previous = (price * Decimal("0.99")).quantize(CENT)
    return {
        "c": price,
        "d": price - previous,
        "dp": ((price - previous) / previous * 100).quantize(Decimal("0.0001")),
        "h": (price * Decimal("1.01")).quantize(CENT),
        "l": (price * Decimal("0.98")).quantize(CENT),
        "o": previous,
        "pc": previous,
        "t": int(when.timestamp()),
    }


FINNHUB_UNKNOWN: dict[str, Any] = {
    "c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0,
}  # fmt: skip


def av_global_quote(symbol: str, price: Decimal, day: date) -> dict[str, Any]:
    """Alpha Vantage GLOBAL_QUOTE: every field a string, prices with four decimals."""
    previous = (price * Decimal("0.99")).quantize(CENT)
    four = Decimal("0.0001")
    return {
        "Global Quote": {
            "01. symbol": symbol,
            "02. open": str(previous.quantize(four)),
            "03. high": str((price * Decimal("1.01")).quantize(four)),
            "04. low": str((price * Decimal("0.98")).quantize(four)),
            "05. price": str(price.quantize(four)),
            "06. volume": str(_digest("volume", symbol) % 10_000_000),
            "07. latest trading day": day.isoformat(),
            "08. previous close": str(previous.quantize(four)),
            "09. change": str((price - previous).quantize(four)),
            "10. change percent": f"{((price - previous) / previous * 100).quantize(four)}%",
        }
    }


DOCS = "https://www.exchangerate-api.com/docs"
TERMS = "https://www.exchangerate-api.com/terms"


def er_latest(base: str, rates: Mapping[str, Decimal], published: datetime) -> dict[str, Any]:
    """ExchangeRate-API v6 `latest`: published at midnight UTC, next update a day later."""
    last = published.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    following = last + timedelta(days=1)
    stamp = "%a, %d %b %Y %H:%M:%S +0000"
    return {
        "result": "success",
        "documentation": DOCS,
        "terms_of_use": TERMS,
        "time_last_update_unix": int(last.timestamp()),
        "time_last_update_utc": last.strftime(stamp),
        "time_next_update_unix": int(following.timestamp()),
        "time_next_update_utc": following.strftime(stamp),
        "base_code": base,
        "conversion_rates": dict(rates),
    }


def er_error(kind: str) -> dict[str, Any]:
    return {"result": "error", "documentation": DOCS, "terms-of-use": TERMS, "error-type": kind}


def dumps(value: Any) -> bytes:
    """JSON with Decimals written as numbers, digit for digit."""
    return _encode(value).encode()


def _encode(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value) if value != value.to_integral_value() else str(int(value))
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    return json.dumps(value)
