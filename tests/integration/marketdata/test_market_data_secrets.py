"""No API key in any log line, exception or result, whichever way a provider fails."""

from __future__ import annotations

import io
import logging
import traceback
from collections.abc import Iterator

import pytest

from common.adapters.marketdata.bootstrap import build_market_data
from common.platform.config import Settings
from common.platform.logging import setup_logging
from devkit.stubs.market_faults import ALPHA_VANTAGE, FAULTS, FINNHUB, PROVIDERS
from devkit.stubs.market_server import StubMarketServer
from tests.integration.marketdata.support import SLOW_SECONDS, price_the_request, settings_for
from tests.marketdata_fakes import FakeClock, MemoryQuotas

SENTINELS = {
    "finnhub_api_key": "SENTINEL-FINNHUB-KEY-7f3a9c51",
    "alpha_vantage_api_key": "SENTINEL-ALPHAVANTAGE-KEY-2b8e1d07",
    "exchange_rate_api_key": "SENTINEL-EXCHANGERATE-KEY-9c4f0a66",
}
EVERY_FAULT = [(provider, fault) for provider in PROVIDERS for fault in sorted(FAULTS[provider])]


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    setup_logging("json", stream=stream, level=logging.DEBUG)
    yield stream
    setup_logging("json", stream=io.StringIO())


def everything_said(settings: Settings, clock: FakeClock) -> list[str]:
    """Results, every adapter's own exception (message and traceback), as text."""
    market_data = build_market_data(
        settings, MemoryQuotas(clock), clock=clock, sleep=clock.sleep, pace_clock=clock
    )
    said = [repr(result) for result in price_the_request(market_data).values()]
    sources = [(s, "AAPL") for s in market_data.chain.sources] + [
        (market_data.chain.fx_source, "EUR")
    ]
    for source, key in sources:
        try:
            said.append(repr(source.fetch(key)))  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001 - we want every kind of failure's text
            said += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    market_data.close()
    return said


def assert_no_sentinel(texts: list[str]) -> None:
    joined = "\n".join(texts)
    assert joined.strip(), "nothing was captured"
    for name, sentinel in SENTINELS.items():
        assert sentinel not in joined, f"{name} leaked"


@pytest.mark.parametrize(("provider", "fault"), EVERY_FAULT)
def test_no_fault_leaks_a_key(
    provider: str, fault: str, log_stream: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock()
    keys = {
        "finnhub_key": SENTINELS["finnhub_api_key"],
        "alpha_vantage_key": SENTINELS["alpha_vantage_api_key"],
        "exchange_rate_key": SENTINELS["exchange_rate_api_key"],
    }
    with StubMarketServer(clock=clock, slow_seconds=SLOW_SECONDS, **keys) as stub:
        if provider == ALPHA_VANTAGE:
            stub.set_fault(FINNHUB, "*", "zeros")
        stub.set_fault(provider, "*", fault)
        said = everything_said(settings_for(stub, **SENTINELS), clock)
    out = capsys.readouterr()
    assert_no_sentinel([*said, log_stream.getvalue(), out.out, out.err])


def test_keys_the_providers_refuse_do_not_leak(
    stub: StubMarketServer, clock: FakeClock, log_stream: io.StringIO
) -> None:
    # The stub expects its own keys, so every sentinel is refused.
    said = everything_said(settings_for(stub, **SENTINELS), clock)
    assert_no_sentinel([*said, log_stream.getvalue()])
    assert "Invalid API key" in "\n".join(said) and "invalid-key" in log_stream.getvalue()


def test_unreachable_providers_do_not_leak_the_keys_in_their_urls(
    clock: FakeClock, log_stream: io.StringIO
) -> None:
    with StubMarketServer(clock=clock) as stub:
        settings = settings_for(stub, **SENTINELS)
    # The stub is gone: its URLs now point at a closed port, connection refused.
    said = everything_said(settings, clock)
    assert_no_sentinel([*said, log_stream.getvalue()])
    # The URL is shown, key masked: an operator still sees where the call went.
    assert "ConnectionError: GET http://127.0.0.1:" in "\n".join(said)
    assert "apikey=***" in "\n".join(said) and "/***/latest/EUR" in "\n".join(said)
