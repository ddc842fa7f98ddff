"""Finnhub `/quote`: the first price source.

`GET <FINNHUB_BASE_URL>/quote?symbol=S` with the key in the `X-Finnhub-Token`
header (never in the URL, so nothing we log can carry it). Finnhub answers
an unknown symbol with HTTP 200 and all zeros, throttles with HTTP 429, and
refuses a bad key with 401/403 `{"error": "..."}`.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from common.adapters.marketdata.quotes import Quote
from common.adapters.marketdata.transport import (
    Clock,
    Timeout,
    as_decimal,
    deny_unauthorized,
    get_json,
    require_object,
    utc_from_unix,
)
from common.domain.errors import ProviderBadResponse

NAME = "finnhub"


class FinnhubSource:
    """`PriceSource` over Finnhub's `/quote` endpoint."""

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
        self._url = f"{base_url.rstrip('/')}/quote"
        self._headers = {"X-Finnhub-Token": api_key}
        self._timeout = timeout
        self._clock = clock

    def fetch(self, symbol: str) -> Quote | None:
        """Finnhub's current price for `symbol`, or None when Finnhub does not know it."""
        reply = get_json(
            self._session,
            self._url,
            provider=NAME,
            key=symbol,
            timeout=self._timeout,
            clock=self._clock,
            params={"symbol": symbol},
            headers=self._headers,
        )
        deny_unauthorized(reply, provider=NAME, key=symbol)
        body = require_object(reply, provider=NAME, key=symbol)
        try:
            return parse_quote(body, symbol)
        except ValueError as exc:
            raise ProviderBadResponse(NAME, symbol, f"unusable quote: {exc}") from None


def parse_quote(body: dict[str, Any], symbol: str) -> Quote | None:
    """A Quote from `{"c": price, "t": unix time, ...}`; None for Finnhub's all-zero answer.

    Raises ValueError when `c` or `t` is missing or not a number.
    """
    if "c" not in body or "t" not in body:
        raise ValueError("no 'c' or 't' field")
    price = as_decimal(body["c"])
    stamp = as_decimal(body["t"])
    if price == 0 and stamp == 0:
        return None
    when = utc_from_unix(stamp)
    return Quote(provider=NAME, symbol=symbol, price=price, time=when, currency=None)
