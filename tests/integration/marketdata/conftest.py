"""Fixtures: the stub market server on loopback and a market-data bootstrap pointed at it.

Time is a FakeClock shared by the stub (quote times, its rate limit), the
quota store in memory and the chain (pacing, backoff, validation), so
retries and pacing cost no real time. The read timeout is short so that the
stub's slow answer costs 0.3 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from common.adapters.marketdata.bootstrap import MarketData, build_market_data
from devkit.stubs.market_server import StubMarketServer
from tests.integration.marketdata.support import SLOW_SECONDS, settings_for
from tests.marketdata_fakes import FakeClock, MemoryQuotas


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stub(clock: FakeClock) -> Iterator[StubMarketServer]:
    with StubMarketServer(clock=clock, slow_seconds=SLOW_SECONDS, unknown_symbols=["NOPE"]) as s:
        yield s


@pytest.fixture
def quotas(clock: FakeClock) -> MemoryQuotas:
    """The providers' shared quotas, on the fake clock: what every `connect()` shares."""
    return MemoryQuotas(clock)


@pytest.fixture
def connect(stub: StubMarketServer, clock: FakeClock, quotas: MemoryQuotas) -> Iterator[Any]:
    """`connect(**settings)` -> MarketData against the stub; closed after the test."""
    built: list[MarketData] = []

    def make(**overrides: Any) -> MarketData:
        market_data = build_market_data(
            settings_for(stub, **overrides),
            quotas,
            clock=clock,
            sleep=clock.sleep,
            pace_clock=clock,
        )
        built.append(market_data)
        return market_data

    yield make
    for market_data in built:
        market_data.close()


@pytest.fixture
def market_data(connect: Any) -> MarketData:
    """Market data for every provider, built against the stub. (`market`, in
    tests/conftest.py, is a stub server of its own for the stages' tests.)"""
    made: MarketData = connect()
    return made
