"""A throttled provider slows the chain down instead of burning retries.

The stub enforces Finnhub's limit itself (429 past N calls in any minute of
the shared fake clock), so the test sees what a real provider would answer.
"""

from __future__ import annotations

from typing import Any

from common.adapters.marketdata.quotes import Quote
from devkit.stubs.market_server import StubMarketServer
from tests.marketdata_fakes import NEW_YORK, RUN_DATE, FakeClock, price_each

LIMIT = 5
SYMBOLS = [f"SYM{i:02d}" for i in range(3 * LIMIT)]


def test_no_more_than_the_limit_reaches_the_provider_in_any_minute(
    stub: StubMarketServer, connect: Any, clock: FakeClock
) -> None:
    stub.set_rate_limit("finnhub", LIMIT)
    market_data = connect(finnhub_calls_per_minute=LIMIT)
    start = clock()

    got = price_each(market_data.chain, SYMBOLS, RUN_DATE, NEW_YORK)

    assert all(isinstance(q, Quote) and q.provider == "finnhub" for q in got.values())
    times = stub.calls_log.times("finnhub")
    assert len(times) == len(SYMBOLS) == stub.calls()  # no retry, no fallback
    assert all(times[i + LIMIT] - times[i] >= 60 for i in range(len(times) - LIMIT))
    assert stub.faults_served("finnhub", "http_429") == 0
    # Paced at 60/LIMIT seconds a call: the run took its time, on the fake clock.
    assert clock() - start >= (len(SYMBOLS) - 1) * 60 / LIMIT


def test_without_pacing_the_same_provider_answers_429(stub: StubMarketServer, connect: Any) -> None:
    stub.set_rate_limit("finnhub", LIMIT)
    market_data = connect(finnhub_calls_per_minute=600)
    price_each(market_data.chain, SYMBOLS, RUN_DATE, NEW_YORK)
    assert stub.faults_served("finnhub", "http_429") > 0
    assert stub.calls() > len(SYMBOLS)  # the retries and fallbacks that pacing avoids
