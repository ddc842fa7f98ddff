"""`make local-run` against the stub: limits the user did not set are lifted (a fast demo),
and the ones set are what the stub enforces and the children keep to."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import date

import pytest

from devkit.local_run import stage_environment, start_stub
from devkit.stubs.market_limits import KeyLimit

LIMIT_VARIABLES = [
    f"{provider}_CALLS_PER_{per}"
    for provider in ("FINNHUB", "ALPHA_VANTAGE", "EXCHANGE_RATE")
    for per in ("MINUTE", "DAY")
]


def test_limits_the_user_did_not_set_are_lifted_and_the_stub_enforces_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in LIMIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with ExitStack() as stack:
        stub = start_stub(stack, date(2026, 11, 27), "XNYS")
        env = stage_environment("postgresql:///x", "http://127.0.0.1:1", stub)
        assert env["FINNHUB_CALLS_PER_MINUTE"] == "100000"
        assert env["ALPHA_VANTAGE_CALLS_PER_DAY"] == "unlimited"
        assert stub.limits.limit("finnhub") == KeyLimit()


def test_a_limit_the_user_set_is_kept_by_the_children_and_enforced_by_the_stub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in LIMIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FINNHUB_CALLS_PER_MINUTE", "60")
    monkeypatch.setenv("ALPHA_VANTAGE_CALLS_PER_DAY", "25")
    with ExitStack() as stack:
        stub = start_stub(stack, date(2026, 11, 27), "XNYS")
        env = stage_environment("postgresql:///x", "http://127.0.0.1:1", stub)
        assert env["FINNHUB_CALLS_PER_MINUTE"] == "60"
        assert env["ALPHA_VANTAGE_CALLS_PER_DAY"] == "25"
        assert env["ALPHA_VANTAGE_CALLS_PER_MINUTE"] == "100000"
        assert stub.limits.limit("finnhub") == KeyLimit(per_minute=60)
        assert stub.limits.limit("alphavantage") == KeyLimit(per_day=25)
