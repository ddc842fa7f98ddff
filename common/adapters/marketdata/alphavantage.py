"""Alpha Vantage `GLOBAL_QUOTE`: the second price source.

`GET <ALPHA_VANTAGE_BASE_URL>/query?function=GLOBAL_QUOTE&symbol=S&apikey=K`.
The key rides in the URL, so every URL we show goes through `redact_url`.
Alpha Vantage answers almost everything with HTTP 200 and says what went
wrong in the body: `{"Note": ...}` or `{"Information": ...}` when throttled
(per minute or per day), `{"Error Message": ...}` for a bad call (a bad key
included), `{"Global Quote": {}}` for an unknown symbol.

Quote time: GLOBAL_QUOTE gives only a date (`07. latest trading day`). We
take 16:00 America/New_York on that date, the US close, which is what the
price is for US listings once the day is over. While that day is still
trading (the executor runs at 09:35) the price is the latest trade, so the
time is now rather than a close that has not happened yet, which the chain
would reject as a time in the future. For a listing elsewhere the instant is
off by the time-zone difference, at most a day, which only matters to the
age check at its edge.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import requests

from common.adapters.marketdata.quotes import Quote
from common.adapters.marketdata.transport import (
    Clock,
    Timeout,
    as_decimal,
    deny_unauthorized,
    get_json,
    require_object,
    short,
)
from common.domain.errors import ProviderBadResponse, Throttled

NAME = "alphavantage"
CLOSE = clock_time(16, 0)
CLOSE_ZONE = ZoneInfo("America/New_York")


class AlphaVantageSource:
    """`PriceSource` over Alpha Vantage's `GLOBAL_QUOTE` function."""

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
        self._url = f"{base_url.rstrip('/')}/query"
        self._api_key = api_key
        self._timeout = timeout
        self._clock = clock

    def fetch(self, symbol: str) -> Quote | None:
        """Alpha Vantage's latest daily price for `symbol`, or None when it has none."""
        reply = get_json(
            self._session,
            self._url,
            provider=NAME,
            key=symbol,
            timeout=self._timeout,
            clock=self._clock,
            params={"function": "GLOBAL_QUOTE", "symbol": symbol, "apikey": self._api_key},
        )
        deny_unauthorized(reply, provider=NAME, key=symbol)
        body = require_object(reply, provider=NAME, key=symbol)
        for notice in ("Note", "Information"):
            if notice in body:
                # No Retry-After here: the per-minute window is the limiter's job,
                # and a daily cap will not lift within any retry budget.
                raise Throttled(NAME, symbol, f"{notice}: {short(str(body[notice]))}")
        if "Error Message" in body:
            said = short(str(body["Error Message"]))
            raise ProviderBadResponse(NAME, symbol, f"Error Message: {said}")
        try:
            now = datetime.fromtimestamp(self._clock(), UTC)
            return parse_global_quote(body, symbol, now=now)
        except ValueError as exc:
            raise ProviderBadResponse(NAME, symbol, f"unusable quote: {exc}") from None


def parse_global_quote(body: dict[str, Any], symbol: str, *, now: datetime) -> Quote | None:
    """A Quote from `{"Global Quote": {...}}`; None for the empty object of an unknown symbol.

    The time is 16:00 New York on the latest trading day, or `now` while that
    day is still trading.

    Raises ValueError when the shape or a field is wrong.
    """
    quote = body.get("Global Quote")
    if not isinstance(quote, dict):
        raise ValueError("no 'Global Quote' object")
    if not quote:
        return None
    try:
        price = as_decimal(quote["05. price"])
        day = date.fromisoformat(str(quote["07. latest trading day"]))
    except KeyError as exc:
        raise ValueError(f"missing field {exc}") from None
    when = datetime.combine(day, CLOSE, tzinfo=CLOSE_ZONE)
    if when > now and day <= now.astimezone(CLOSE_ZONE).date():
        when = now
    return Quote(provider=NAME, symbol=symbol, price=price, time=when, currency=None)
