"""ExchangeRate-API v6 `latest/<BASE>`: every rate from one base currency in one call.

`GET <EXCHANGE_RATE_BASE_URL>/<KEY>/latest/<BASE>`. The key is a path
segment, so every URL we show goes through `redact_url` (which masks the
key once bootstrap registered it). Errors come in the body as
`{"result": "error", "error-type": ...}` whatever the HTTP status, so the body
is read before the status. Rates are cached in memory until the provider's
`time_next_update_unix`: asking again before then cannot give anything new.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

import requests

from common.adapters.marketdata.quotes import FxRates
from common.adapters.marketdata.transport import (
    Clock,
    Timeout,
    as_decimal,
    deny_unauthorized,
    get_json,
    require_object,
    utc_from_unix,
)
from common.domain.errors import (
    MarketDataError,
    ProviderAccessDenied,
    ProviderBadResponse,
    Throttled,
    UnknownSymbol,
)

NAME = "exchangerate"
_CURRENCY = re.compile(r"[A-Z]{3}")

# What each documented `error-type` means to us.
ERROR_TYPES: dict[str, type[MarketDataError]] = {
    "unsupported-code": UnknownSymbol,
    "no-data-available": UnknownSymbol,
    "malformed-request": ProviderBadResponse,
    "invalid-key": ProviderAccessDenied,
    "inactive-account": ProviderAccessDenied,
    "plan-upgrade-required": ProviderAccessDenied,
    "quota-reached": Throttled,
}


class ExchangeRateSource:
    """`FxSource` over ExchangeRate-API v6, with an in-memory cache per base currency."""

    name = NAME

    def __init__(
        self,
        session: requests.Session,
        *,
        base_url: str,
        api_key: str,
        timeout: Timeout,
        clock: Clock = time.time,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        self._clock = clock
        self._cache: dict[str, FxRates] = {}
        self._lock = threading.Lock()

    def cached(self, base: str) -> FxRates | None:
        """Rates for `base` from an earlier call while the provider has published nothing newer."""
        with self._lock:
            rates = self._cache.get(base)
        now = datetime.fromtimestamp(self._clock(), UTC)
        if rates is None or rates.next_update is None or now >= rates.next_update:
            return None
        return rates

    def fetch(self, base: str) -> FxRates:
        """Every rate from `base`: from the cache while current, else in one call."""
        if not _CURRENCY.fullmatch(base):
            # Never put an arbitrary string into the URL path.
            raise UnknownSymbol(NAME, base[:8], "not a currency code")
        rates = self.cached(base)
        if rates is not None:
            return rates
        reply = get_json(
            self._session,
            f"{self._base_url}/{self._api_key}/latest/{base}",
            provider=NAME,
            key=base,
            timeout=self._timeout,
            clock=self._clock,
        )
        if isinstance(reply.body, dict) and reply.body.get("result") == "error":
            raise _error(reply.body, base)
        deny_unauthorized(reply, provider=NAME, key=base)
        body = require_object(reply, provider=NAME, key=base)
        try:
            rates = parse_latest(body, base)
        except ValueError as exc:
            raise ProviderBadResponse(NAME, base, f"unusable rates: {exc}") from None
        with self._lock:
            self._cache[base] = rates
        return rates


def parse_latest(body: dict[str, Any], base: str) -> FxRates:
    """FxRates from a `"result": "success"` body. Raises ValueError when the shape is wrong."""
    if body.get("result") != "success":
        raise ValueError("result is not 'success'")
    if body.get("base_code") != base:
        raise ValueError(f"asked for {base}, got base_code {str(body.get('base_code'))[:8]!r}")
    table = body.get("conversion_rates")
    if not isinstance(table, dict):
        raise ValueError("no 'conversion_rates' object")
    rates = {str(code): as_decimal(value) for code, value in table.items()}
    next_update = body.get("time_next_update_unix")
    return FxRates(
        provider=NAME,
        base=base,
        rates=rates,
        time=utc_from_unix(body.get("time_last_update_unix")),
        next_update=utc_from_unix(next_update) if next_update is not None else None,
    )


def _error(body: dict[str, Any], base: str) -> MarketDataError:
    kind = str(body.get("error-type", "unknown"))[:40]
    error = ERROR_TYPES.get(kind, ProviderBadResponse)
    return error(NAME, base, f"error-type {kind}")
