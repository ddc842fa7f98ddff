"""Every scripted fault over real sockets: who priced it, or how it failed, and at what cost.

The request prices S symbols and C FX bases; with nothing wrong it costs
exactly S + C calls. Each fault may add only the retries and fallbacks it
forces, read from the stub's own counters.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from common.adapters.marketdata.bootstrap import MarketData
from common.adapters.marketdata.quotes import FxRates, Quote
from common.domain.statuses import Reason
from devkit.stubs.market_server import StubMarketServer
from tests.integration.marketdata.support import (
    BASELINE_CALLS,
    SYMBOLS,
    outcomes,
    price_the_request,
)
from tests.marketdata_fakes import NEW_YORK, RUN_DATE, FakeClock, price_each

FH, AV, ER = "finnhub", "alphavantage", "exchangerate"
NORMAL = {"AAPL": FH, "MSFT": FH, "IBM": FH, "EUR": ER, "GBP": ER}

# (provider, fault, times, outcome for the faulted key, calls beyond S + C).
# Finnhub and Alpha Vantage faults hit AAPL, ExchangeRate-API faults hit EUR.
# Alpha Vantage is only asked when Finnhub does not know AAPL, so its cases
# also script Finnhub zeros: one fallback call is part of their extra.
# Retry policy: 3 attempts, so "always" transient faults cost 2 retries.
CASES = [
    (FH, "http_429", 1, FH, 1),
    (FH, "http_429", None, AV, 3),
    (FH, "http_500", 1, FH, 1),
    (FH, "http_500", None, AV, 3),
    (FH, "slow", 1, FH, 1),
    (FH, "slow", None, AV, 3),
    (FH, "garbage", None, AV, 1),
    (FH, "zeros", None, AV, 1),
    (FH, "stale", None, AV, 1),
    (AV, "note", 1, AV, 2),
    (AV, "note", None, Reason.PROVIDER_ERROR, 3),
    (AV, "information", None, Reason.PROVIDER_ERROR, 3),
    (AV, "error_message", None, Reason.PROVIDER_ERROR, 1),
    (AV, "empty_quote", None, Reason.PRICE_UNAVAILABLE, 1),
    (AV, "stale", None, Reason.PRICE_UNAVAILABLE, 1),
    (AV, "http_429", 1, AV, 2),
    (AV, "http_500", None, Reason.PROVIDER_ERROR, 3),
    (AV, "slow", None, Reason.PROVIDER_ERROR, 3),
    (AV, "garbage", None, Reason.PROVIDER_ERROR, 1),
    (ER, "quota-reached", 1, ER, 1),
    (ER, "quota-reached", None, Reason.PROVIDER_ERROR, 2),
    (ER, "unsupported-code", None, Reason.PRICE_UNAVAILABLE, 0),
    (ER, "malformed-request", None, Reason.PROVIDER_ERROR, 0),
    (ER, "http_429", 1, ER, 1),
    (ER, "http_500", None, Reason.PROVIDER_ERROR, 2),
    (ER, "slow", 1, ER, 1),
    (ER, "garbage", None, Reason.PROVIDER_ERROR, 0),
    (ER, "stale", None, Reason.PRICE_UNAVAILABLE, 0),
]


def case_id(case: tuple[str, str, int | None, str, int]) -> str:
    provider, fault, times, _, _ = case
    return f"{provider}-{fault}-{'always' if times is None else f'{times}x'}"


@pytest.mark.parametrize(
    ("provider", "fault", "times", "expected", "extra"), CASES, ids=[case_id(c) for c in CASES]
)
def test_a_fault_costs_only_the_calls_it_forces(
    stub: StubMarketServer,
    market_data: MarketData,
    provider: str,
    fault: str,
    times: int | None,
    expected: str,
    extra: int,
) -> None:
    key = "EUR" if provider == ER else "AAPL"
    if provider == AV:
        stub.set_fault(FH, "AAPL", "zeros")
    stub.set_fault(provider, key, fault, times)

    results = price_the_request(market_data)

    assert outcomes(results) == {**NORMAL, key: expected}
    assert stub.calls() == BASELINE_CALLS + extra
    assert sum(market_data.calls.values()) == stub.calls()


def test_prices_and_rates_are_the_providers_digits(
    stub: StubMarketServer, market_data: MarketData
) -> None:
    stub.set_fault(FH, "AAPL", "zeros")
    results = price_the_request(market_data)
    aapl, msft, eur = results["AAPL"], results["MSFT"], results["EUR"]
    assert isinstance(aapl, Quote) and aapl.provider == AV
    assert aapl.price == stub.price_of("AAPL")
    assert isinstance(msft, Quote) and msft.price == stub.price_of("MSFT")
    assert isinstance(eur, FxRates) and eur.rates["JPY"] == stub.rates_of("EUR")["JPY"]


def test_a_retry_after_header_sets_the_wait(
    stub: StubMarketServer, market_data: MarketData, clock: FakeClock
) -> None:
    stub.set_fault(FH, "AAPL", "http_429", times=1, retry_after=7)
    assert outcomes(price_the_request(market_data))["AAPL"] == FH
    assert 7 in clock.slept


def test_a_symbol_no_provider_knows_is_unavailable_after_one_call_each(
    stub: StubMarketServer, market_data: MarketData
) -> None:
    got = market_data.chain.price("NOPE", RUN_DATE, NEW_YORK)
    assert outcomes({"NOPE": got}) == {"NOPE": Reason.PRICE_UNAVAILABLE}
    assert (stub.calls(FH), stub.calls(AV)) == (1, 1)


def test_a_refused_finnhub_key_sends_every_symbol_to_alpha_vantage(
    stub: StubMarketServer, market_data: MarketData
) -> None:
    stub.set_fault(FH, "AAPL", "http_401")
    results = price_the_request(market_data)
    assert outcomes(results) == {**NORMAL, "AAPL": AV, "MSFT": AV, "IBM": AV}
    assert (stub.calls(FH), stub.calls(AV)) == (1, len(SYMBOLS))


@pytest.mark.parametrize(
    ("wrong", "expected"),
    [
        ("finnhub_api_key", {"AAPL": AV, "MSFT": AV, "IBM": AV}),
        ("alpha_vantage_api_key", {"AAPL": Reason.PROVIDER_ERROR}),
        ("exchange_rate_api_key", {"EUR": Reason.PROVIDER_ERROR, "GBP": Reason.PROVIDER_ERROR}),
    ],
)
def test_a_wrong_key_is_refused_the_way_each_provider_refuses_it(
    stub: StubMarketServer, connect: Any, wrong: str, expected: dict[str, str]
) -> None:
    stub.set_fault(FH, "AAPL", "zeros")  # so that Alpha Vantage is asked for AAPL
    market_data = connect(**{wrong: "not-the-right-key"})
    got = outcomes(price_the_request(market_data))
    assert got == {**NORMAL, "AAPL": AV, **expected}


@pytest.mark.parametrize("fault", ["invalid-key", "inactive-account"])
def test_a_refused_fx_key_fails_every_base_after_one_call(
    stub: StubMarketServer, market_data: MarketData, fault: str
) -> None:
    stub.set_fault(ER, "EUR", fault)
    results = price_the_request(market_data)
    assert outcomes(results) == {
        **NORMAL,
        "EUR": Reason.PROVIDER_ERROR,
        "GBP": Reason.PROVIDER_ERROR,
    }
    assert stub.calls(ER) == 1 and stub.calls() == BASELINE_CALLS - 1
    assert "circuit open" in getattr(results["GBP"], "detail", "")


def test_a_provider_that_keeps_failing_is_skipped_for_the_rest_of_the_chunk(
    stub: StubMarketServer, market_data: MarketData
) -> None:
    stub.set_fault(FH, "*", "http_500")
    symbols = [*SYMBOLS, "NVDA", "TSLA"]
    got = price_each(market_data.chain, symbols, RUN_DATE, NEW_YORK)
    assert outcomes(got) == dict.fromkeys(symbols, AV)
    # Three symbols of three attempts each open the circuit; the rest go straight to AV.
    assert (stub.calls(FH), stub.calls(AV)) == (9, len(symbols))


def test_fx_rates_are_fetched_once_until_the_provider_publishes_new_ones(
    stub: StubMarketServer, market_data: MarketData, clock: FakeClock
) -> None:
    first = market_data.chain.fx("EUR", RUN_DATE)
    assert isinstance(first, FxRates) and first.next_update is not None
    assert isinstance(market_data.chain.fx("EUR", RUN_DATE), FxRates)
    assert stub.calls(ER) == 1
    clock.now = first.next_update.timestamp() + 1
    market_data.chain.fx("EUR", RUN_DATE)
    assert stub.calls(ER) == 2


def test_the_stub_reports_the_same_counts_over_http(
    stub: StubMarketServer, market_data: MarketData
) -> None:
    price_the_request(market_data)
    counts = requests.get(f"{stub.url}/_stub/calls", timeout=5).json()
    assert counts["total"] == BASELINE_CALLS
    assert counts[FH]["quote"] == {"total": 3, "AAPL": 1, "MSFT": 1, "IBM": 1}
    assert counts[ER]["latest"]["EUR"] == 1
