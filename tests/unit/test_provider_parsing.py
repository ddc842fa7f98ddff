"""Each provider's real response shape, parsed into Decimals and aware times."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from common.adapters.marketdata.alphavantage import parse_global_quote
from common.adapters.marketdata.exchangerate import parse_latest
from common.adapters.marketdata.finnhub import parse_quote
from common.adapters.marketdata.transport import as_decimal, parse_retry_after
from tests.marketdata_fakes import NEW_YORK, NOW


def decoded(text: str) -> dict[str, Any]:
    """What the adapters get from a body: JSON with Decimal floats."""
    body: dict[str, Any] = json.loads(text, parse_float=Decimal, parse_constant=Decimal)
    return body


FINNHUB = (
    '{"c":261.74,"d":0.42,"dp":0.16,"h":263.31,"l":260.68,"o":261.07,"pc":261.32,"t":1582641000}'
)


def test_finnhub_quote_keeps_the_price_digit_for_digit_and_the_time_in_utc() -> None:
    got = parse_quote(decoded(FINNHUB), "AAPL")
    assert got is not None
    assert got.price == Decimal("261.74") and str(got.price) == "261.74"
    assert got.time == datetime(2020, 2, 25, 14, 30, tzinfo=UTC)
    assert got.provider == "finnhub" and got.currency is None


def test_finnhub_all_zeros_means_no_such_symbol() -> None:
    body = '{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}'
    assert parse_quote(decoded(body), "NOPE") is None


@pytest.mark.parametrize("body", ['{"error":"x"}', '{"c":"abc","t":1}', '{"c":1,"t":true}'])
def test_finnhub_bodies_without_a_usable_price_are_errors(body: str) -> None:
    with pytest.raises(ValueError):
        parse_quote(decoded(body), "AAPL")


AV = {
    "Global Quote": {
        "01. symbol": "IBM",
        "05. price": "189.9500",
        "07. latest trading day": "2026-11-25",
    }
}


def test_alpha_vantage_price_is_the_string_and_the_time_the_new_york_close() -> None:
    got = parse_global_quote(AV, "IBM", now=NOW)
    assert got is not None
    assert got.price == Decimal("189.9500")
    assert got.time == datetime(2026, 11, 25, 16, 0, tzinfo=NEW_YORK)


def test_alpha_vantage_quote_of_a_day_still_trading_is_timed_now() -> None:
    today = {"Global Quote": {**AV["Global Quote"], "07. latest trading day": "2026-11-27"}}
    got = parse_global_quote(today, "IBM", now=NOW)
    assert got is not None and got.time == NOW


def test_alpha_vantage_empty_global_quote_means_no_such_symbol() -> None:
    assert parse_global_quote({"Global Quote": {}}, "NOPE", now=NOW) is None


BAD_AV = [
    {},
    {"Global Quote": {"05. price": "1"}},
    {"Global Quote": {"05. price": "x", "07. latest trading day": "2026-11-25"}},
]


@pytest.mark.parametrize("body", BAD_AV)
def test_alpha_vantage_bodies_without_a_usable_quote_are_errors(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        parse_global_quote(body, "IBM", now=NOW)


ER = (
    '{"result":"success","documentation":"https://www.exchangerate-api.com/docs",'
    '"terms_of_use":"https://www.exchangerate-api.com/terms","time_last_update_unix":1585267200,'
    '"time_last_update_utc":"Fri, 27 Mar 2020 00:00:00 +0000","time_next_update_unix":1585353700,'
    '"time_next_update_utc":"Sat, 28 Mar 2020 00:00:00 +0000","base_code":"USD",'
    '"conversion_rates":{"USD":1,"JPY":151.23,"EUR":0.9013}}'
)


def test_exchange_rate_table_is_decimal_with_both_update_times() -> None:
    rates = parse_latest(decoded(ER), "USD")
    assert rates.rates == {"USD": Decimal(1), "JPY": Decimal("151.23"), "EUR": Decimal("0.9013")}
    assert rates.time == datetime(2020, 3, 27, tzinfo=UTC)
    assert rates.next_update == datetime(2020, 3, 28, 0, 1, 40, tzinfo=UTC)
    assert rates.rates["JPY"] == Decimal("151.23") and "XYZ" not in rates.rates


def test_exchange_rate_table_for_another_base_is_refused() -> None:
    with pytest.raises(ValueError, match="base_code"):
        parse_latest(decoded(ER), "EUR")


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    now = NOW.timestamp()
    assert parse_retry_after("7", now) == 7.0
    in_ten = (NOW + timedelta(seconds=10)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(in_ten, now) == pytest.approx(10.0)
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("-3", now) == 0.0


def test_numbers_are_built_from_text_never_from_floats() -> None:
    assert as_decimal("189.9500") == Decimal("189.9500")
    assert as_decimal(Decimal("0.1")) + as_decimal(Decimal("0.2")) == Decimal("0.3")
    for bad in (True, 0.1, None, "abc"):
        with pytest.raises(ValueError):
            as_decimal(bad)
