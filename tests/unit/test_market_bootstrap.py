"""Bootstrap: a source per provider that has a key, and a clear error when none has."""

from __future__ import annotations

import pytest

from common.adapters.marketdata.bootstrap import build_market_data
from common.adapters.marketdata.quotes import PriceFailure
from common.domain.errors import ConfigError
from common.domain.statuses import Reason
from common.platform.config import Settings
from common.platform.redact import redact
from tests.marketdata_fakes import RUN_DATE, FakeClock, MemoryQuotas

QUOTAS = MemoryQuotas(FakeClock())


def test_without_any_price_provider_key_it_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError) as error:
        build_market_data(Settings(exchange_rate_api_key="some-fx-key"), QUOTAS)
    assert set(error.value.problems) == {"FINNHUB_API_KEY", "ALPHA_VANTAGE_API_KEY"}


def test_a_provider_without_a_key_is_left_out_of_the_chain() -> None:
    market = build_market_data(Settings(alpha_vantage_api_key="only-av-key-123"), QUOTAS)
    try:
        assert [source.name for source in market.chain.sources] == ["alphavantage"]
        assert market.chain.fx_source is None
        fx = market.chain.fx("EUR", RUN_DATE)
        assert isinstance(fx, PriceFailure) and fx.reason == Reason.PROVIDER_ERROR
    finally:
        market.close()


def test_every_key_is_registered_for_redaction_before_any_call() -> None:
    market = build_market_data(
        Settings(finnhub_api_key="fh-bootstrap-key", exchange_rate_api_key="er-bootstrap-key"),
        QUOTAS,
    )
    market.close()
    assert redact("fh-bootstrap-key er-bootstrap-key") == "*** ***"
    assert [source.name for source in market.chain.sources] == ["finnhub"]
