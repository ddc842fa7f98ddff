"""The stub itself: real shapes, deterministic answers, scripting over HTTP, the CLI."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from devkit.stubs.market_limits import KeyLimit, limits_from_environment
from devkit.stubs.market_server import StubMarketServer
from tests.marketdata_fakes import FakeClock

TIMEOUT = 5


def finnhub(stub: StubMarketServer, symbol: str) -> requests.Response:
    return requests.get(
        f"{stub.finnhub_url}/quote",
        params={"symbol": symbol},
        headers={"X-Finnhub-Token": stub.finnhub_key},
        timeout=TIMEOUT,
    )


def test_each_api_answers_in_its_real_shape(stub: StubMarketServer) -> None:
    assert set(finnhub(stub, "AAPL").json()) == {"c", "d", "dp", "h", "l", "o", "pc", "t"}
    av = requests.get(
        f"{stub.alpha_vantage_url}/query",
        params={"function": "GLOBAL_QUOTE", "symbol": "IBM", "apikey": stub.alpha_vantage_key},
        timeout=TIMEOUT,
    ).json()
    assert list(av["Global Quote"])[4:7] == ["05. price", "06. volume", "07. latest trading day"]
    er = requests.get(
        f"{stub.exchange_rate_url}/{stub.exchange_rate_key}/latest/USD", timeout=TIMEOUT
    ).json()
    assert er["result"] == "success" and er["base_code"] == "USD"
    assert er["conversion_rates"]["USD"] == 1 and "time_next_update_unix" in er


def test_prices_are_fixed_by_the_seed_or_a_csv(tmp_path: Path) -> None:
    csv = tmp_path / "prices.csv"
    csv.write_text("symbol,price\nAAPL,261.74\n", encoding="utf-8")
    one, two = StubMarketServer(seed="s"), StubMarketServer(seed="s", prices_csv=csv)
    assert one.price_of("MSFT") == two.price_of("MSFT") != StubMarketServer().price_of("MSFT")
    assert two.price_of("aapl") == Decimal("261.74")
    assert Decimal("1.00") <= one.price_of("ANY") <= Decimal("999.99")


def test_faults_can_be_scripted_and_cleared_over_http(stub: StubMarketServer) -> None:
    fault = {"provider": "finnhub", "key": "AAPL", "fault": "http_500", "times": 1}
    assert requests.post(f"{stub.url}/_stub/faults", json=fault, timeout=TIMEOUT).ok
    assert finnhub(stub, "AAPL").status_code == 500
    assert finnhub(stub, "AAPL").status_code == 200  # times=1 is used up
    always = {**fault, "fault": "zeros", "times": None}
    requests.post(f"{stub.url}/_stub/faults", json=[always], timeout=TIMEOUT)
    assert finnhub(stub, "AAPL").json()["c"] == 0
    requests.delete(f"{stub.url}/_stub/faults", timeout=TIMEOUT)
    assert finnhub(stub, "AAPL").json()["c"] > 0


def test_a_fault_a_provider_does_not_have_is_refused(stub: StubMarketServer) -> None:
    bad = {"provider": "finnhub", "key": "AAPL", "fault": "note"}
    assert requests.post(f"{stub.url}/_stub/faults", json=bad, timeout=TIMEOUT).status_code == 400
    with pytest.raises(ValueError, match="no fault"):
        stub.set_fault("exchangerate", "EUR", "zeros")


def test_calls_are_counted_per_provider_endpoint_and_key_and_can_be_reset(
    stub: StubMarketServer,
) -> None:
    finnhub(stub, "AAPL")
    finnhub(stub, "AAPL")
    assert stub.calls("finnhub", "quote", "AAPL") == 2
    requests.delete(f"{stub.url}/_stub/calls", timeout=TIMEOUT)
    assert requests.get(f"{stub.url}/_stub/calls", timeout=TIMEOUT).json()["total"] == 0


def test_the_stub_runs_standalone_and_prints_where_it_listens() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit.stubs.market_server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = dict(process.stdout.readline().strip().split("=", 1) for _ in range(6))
        response = requests.get(
            f"{lines['FINNHUB_BASE_URL']}/quote",
            params={"symbol": "AAPL"},
            headers={"X-Finnhub-Token": lines["FINNHUB_API_KEY"]},
            timeout=TIMEOUT,
        )
        assert response.json()["c"] > 0
        assert lines["EXCHANGE_RATE_BASE_URL"].startswith("http://127.0.0.1:")
    finally:
        process.terminate()
        process.wait(timeout=TIMEOUT)
        if process.stdout:
            process.stdout.close()


def alpha_vantage(stub: StubMarketServer, symbol: str) -> dict[str, object]:
    body: dict[str, object] = requests.get(
        f"{stub.alpha_vantage_url}/query",
        params={"function": "GLOBAL_QUOTE", "symbol": symbol, "apikey": stub.alpha_vantage_key},
        timeout=TIMEOUT,
    ).json()
    return body


def test_past_its_per_minute_limit_finnhub_answers_429_until_the_oldest_call_leaves(
    stub: StubMarketServer, clock: FakeClock
) -> None:
    stub.set_rate_limit("finnhub", 3)
    for _ in range(3):
        assert finnhub(stub, "AAPL").status_code == 200
        clock.sleep(10)
    refused = finnhub(stub, "AAPL")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
    clock.sleep(30)  # the first call is now a minute old: out of the window
    assert finnhub(stub, "AAPL").status_code == 200
    assert finnhub(stub, "AAPL").status_code == 429  # refused calls did not count, this one did
    assert stub.faults_served("finnhub", "http_429") == 2


def test_calls_with_a_wrong_key_do_not_count_against_the_keys_limit(
    stub: StubMarketServer,
) -> None:
    stub.set_rate_limit("finnhub", 1)
    wrong = requests.get(
        f"{stub.finnhub_url}/quote",
        params={"symbol": "AAPL"},
        headers={"X-Finnhub-Token": "someone-elses-key"},
        timeout=TIMEOUT,
    )
    assert wrong.status_code == 401
    assert finnhub(stub, "AAPL").status_code == 200


def test_alpha_vantage_says_note_per_minute_and_information_per_day(
    stub: StubMarketServer, clock: FakeClock
) -> None:
    stub.set_limits("alphavantage", per_minute=2, per_day=3)
    assert "Global Quote" in alpha_vantage(stub, "IBM")
    assert "Global Quote" in alpha_vantage(stub, "IBM")
    assert "Note" in alpha_vantage(stub, "IBM")
    clock.sleep(61)
    assert "Global Quote" in alpha_vantage(stub, "IBM")
    clock.sleep(61)
    assert "Information" in alpha_vantage(stub, "IBM")  # three calls today: the day is spent
    clock.sleep(24 * 3600)  # the next UTC day's budget is fresh
    assert "Global Quote" in alpha_vantage(stub, "IBM")


def test_exchange_rate_api_says_quota_reached(stub: StubMarketServer) -> None:
    stub.set_limits("exchangerate", per_minute=None, per_day=1)
    url = f"{stub.exchange_rate_url}/{stub.exchange_rate_key}/latest/USD"
    assert requests.get(url, timeout=TIMEOUT).json()["result"] == "success"
    refused = requests.get(url, timeout=TIMEOUT).json()
    assert refused["result"] == "error" and refused["error-type"] == "quota-reached"


def test_limits_come_from_the_variables_worthy_batch_reads() -> None:
    env = {
        "FINNHUB_CALLS_PER_MINUTE": "60",
        "ALPHA_VANTAGE_CALLS_PER_MINUTE": "5",
        "ALPHA_VANTAGE_CALLS_PER_DAY": "25",
        "EXCHANGE_RATE_CALLS_PER_DAY": "unlimited",
        "EXCHANGE_RATE_CALLS_PER_MINUTE": "",
    }
    assert limits_from_environment(env) == {
        "finnhub": KeyLimit(per_minute=60),
        "alphavantage": KeyLimit(per_minute=5, per_day=25),
    }
