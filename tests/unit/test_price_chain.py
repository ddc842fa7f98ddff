"""The price chain with fake sources: order, validation, classification, retries, breakers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from common.adapters.marketdata.chain import PriceChain
from common.adapters.marketdata.limits import ProviderQuota
from common.adapters.marketdata.ports import FxSource, PriceSource
from common.adapters.marketdata.quotes import FxRates, PriceFailure, Quote
from common.adapters.marketdata.retrying import RetryPolicy
from common.domain.errors import (
    ProviderAccessDenied,
    ProviderBadResponse,
    ProviderUnavailable,
    Throttled,
    UnknownSymbol,
)
from common.domain.statuses import Reason
from tests.marketdata_fakes import (
    NEW_YORK,
    NOW,
    RUN_DATE,
    Answer,
    FakeClock,
    FakeFxSource,
    FakePriceSource,
    MemoryQuotas,
    price_each,
    quote,
)


def chain_of(
    *sources: PriceSource,
    clock: FakeClock | None = None,
    fx: FxSource | None = None,
    retry: RetryPolicy | None = None,
    quotas: dict[str, ProviderQuota] | None = None,
) -> PriceChain:
    clock = clock or FakeClock()
    return PriceChain(
        sources,
        max_age_days=4,
        fx_source=fx,
        clock=clock,
        sleep=clock.sleep,
        retry=retry,
        quotas=quotas,
    )


def price(chain: PriceChain, symbol: str = "AAPL") -> Quote | PriceFailure:
    return chain.price(symbol, RUN_DATE, NEW_YORK)


def test_the_first_valid_quote_wins_and_later_sources_are_not_asked() -> None:
    first = FakePriceSource("first", {"AAPL": quote("first", "AAPL", "261.74")})
    second = FakePriceSource("second", {"AAPL": quote("second", "AAPL")})
    got = price(chain_of(first, second))
    assert isinstance(got, Quote) and got.provider == "first" and got.price == Decimal("261.74")
    assert second.calls["AAPL"] == 0


def test_an_unknown_symbol_falls_through_to_the_next_source() -> None:
    second = FakePriceSource("second", {"AAPL": quote("second", "AAPL")})
    got = price(chain_of(FakePriceSource("first"), second))
    assert isinstance(got, Quote) and got.provider == "second"


def test_an_invalid_quote_falls_through_to_the_next_source() -> None:
    stale = quote("first", "AAPL", when=NOW - timedelta(days=10))
    for bad in (stale, quote("first", "AAPL", "0"), quote("first", "AAPL", "NaN")):
        second = FakePriceSource("second", {"AAPL": quote("second", "AAPL")})
        got = price(chain_of(FakePriceSource("first", {"AAPL": bad}), second))
        assert isinstance(got, Quote) and got.provider == "second"


def test_when_every_source_answers_without_a_valid_quote_the_price_is_unavailable() -> None:
    stale = quote("second", "AAPL", when=NOW - timedelta(days=10))
    got = price(chain_of(FakePriceSource("first"), FakePriceSource("second", {"AAPL": stale})))
    assert isinstance(got, PriceFailure) and got.reason == Reason.PRICE_UNAVAILABLE
    assert "first: no such symbol" in got.detail and "second: quote of" in got.detail


def test_when_any_source_fails_to_answer_it_is_a_provider_error() -> None:
    broken = FakePriceSource("second", {"AAPL": ProviderBadResponse("second", "AAPL", "garbage")})
    got = price(chain_of(FakePriceSource("first"), broken))
    assert isinstance(got, PriceFailure) and got.reason == Reason.PROVIDER_ERROR
    assert "garbage" in got.detail


def test_transient_failures_are_retried_with_backoff_until_one_succeeds() -> None:
    clock = FakeClock()
    flaky = FakePriceSource(
        "first",
        {"AAPL": [ProviderUnavailable("first", "AAPL", "HTTP 500"), quote("first", "AAPL")]},
    )
    chain = chain_of(flaky, clock=clock)
    assert isinstance(price(chain), Quote)
    assert flaky.calls["AAPL"] == 2 and chain.calls["first"] == 2
    assert len(clock.slept) == 1 and 0 < clock.slept[0] <= 1.0  # initial 0.5 s plus jitter


def test_a_retry_after_from_the_provider_is_honoured() -> None:
    clock = FakeClock()
    throttled = Throttled("first", "AAPL", "HTTP 429", retry_after=7)
    source = FakePriceSource("first", {"AAPL": [throttled, quote("first", "AAPL")]})
    assert isinstance(price(chain_of(source, clock=clock)), Quote)
    assert clock.slept == [7]


def test_retries_stop_after_the_attempt_limit_and_the_next_source_is_asked() -> None:
    down = FakePriceSource("first", {"AAPL": ProviderUnavailable("first", "AAPL", "timed out")})
    backup = FakePriceSource("second", {"AAPL": quote("second", "AAPL")})
    got = price(chain_of(down, backup, retry=RetryPolicy(max_attempts=4)))
    assert isinstance(got, Quote) and got.provider == "second"
    assert down.calls["AAPL"] == 4


def test_retries_stop_when_the_next_wait_would_exceed_the_budget() -> None:
    clock = FakeClock()
    slow_down = Throttled("first", "AAPL", "HTTP 429", retry_after=20)
    source = FakePriceSource("first", {"AAPL": slow_down})
    policy = RetryPolicy(max_attempts=10, budget_seconds=30)
    got = price(chain_of(source, clock=clock, retry=policy))
    assert isinstance(got, PriceFailure) and got.reason == Reason.PROVIDER_ERROR
    assert source.calls["AAPL"] == 2 and clock.slept == [20]
    assert "attempts: 2" in got.detail


def test_answers_that_retrying_cannot_fix_are_not_retried() -> None:
    for error in (
        ProviderBadResponse("first", "AAPL", "Error Message"),
        ProviderAccessDenied("first", "AAPL", "HTTP 401"),
    ):
        source = FakePriceSource("first", {"AAPL": error})
        price(chain_of(source))
        assert source.calls["AAPL"] == 1


def test_a_refused_key_skips_the_provider_for_the_rest_of_the_chain() -> None:
    denied = ProviderAccessDenied("first", "*", "HTTP 401: Invalid API key")
    first = FakePriceSource("first", {s: denied for s in ("A", "B", "C")})
    second = FakePriceSource("second", {s: quote("second", s) for s in ("A", "B", "C")})
    chain = chain_of(first, second)
    got = price_each(chain, ["A", "B", "C"], RUN_DATE, NEW_YORK)
    assert all(isinstance(q, Quote) and q.provider == "second" for q in got.values())
    assert sum(first.calls.values()) == 1
    assert chain.breakers["first"].is_open


def test_repeated_failures_open_the_circuit_and_an_answer_resets_the_count() -> None:
    error = ProviderBadResponse("first", "x", "garbage")
    script: dict[str, Answer | list[Answer]] = {s: error for s in "ABCDEF"}
    script["OK"] = quote("first", "OK")
    first = FakePriceSource("first", script)
    chain = chain_of(first, FakePriceSource("second"))
    price_each(chain, ["A", "B", "OK", "C", "D", "E", "F"], RUN_DATE, NEW_YORK)
    # A, B fail; OK resets; C, D, E fail and open the circuit; F is never asked.
    assert [s for s in "ABCDEF" if first.calls[s]] == list("ABCDE")
    failure = chain.price("F", RUN_DATE, NEW_YORK)
    assert isinstance(failure, PriceFailure) and "circuit open" in failure.detail
    assert failure.reason == Reason.PROVIDER_ERROR


def test_pricing_each_distinct_symbol_asks_once() -> None:
    source = FakePriceSource("first", {s: quote("first", s) for s in ("A", "B")})
    chain = chain_of(source)
    got = price_each(chain, ["A", "B", "A", "A"], RUN_DATE, NEW_YORK)
    assert list(got) == ["A", "B"] and chain.calls["first"] == 2


def test_a_rate_limited_provider_is_paced_not_hammered() -> None:
    clock = FakeClock()
    source = FakePriceSource("first", {s: quote("first", s) for s in "ABCDE"})
    quota = ProviderQuota(
        MemoryQuotas(clock), "first", "k", calls_per_minute=6, clock=clock, sleep=clock.sleep
    )
    chain = chain_of(source, clock=clock, quotas={"first": quota})
    price_each(chain, list("ABCDE"), RUN_DATE, NEW_YORK)
    assert clock.slept == pytest.approx([61 / 6] * 4)  # a little over 60 / 6 each


def budgeted(clock: FakeClock, store: MemoryQuotas, per_day: int) -> dict[str, ProviderQuota]:
    """The quotas of a chain whose provider "second" may make `per_day` calls a day."""
    quota = ProviderQuota(
        store,
        "second",
        "k",
        calls_per_minute=600,
        calls_per_day=per_day,
        clock=clock,
        sleep=clock.sleep,
    )
    return {"second": quota}


def test_a_spent_daily_budget_skips_the_provider_without_a_call() -> None:
    clock = FakeClock()
    first = FakePriceSource("first", {s: ProviderUnavailable("first", s, "HTTP 500") for s in "AB"})
    second = FakePriceSource("second", {s: quote("second", s) for s in "ABCD"})
    chain = chain_of(first, second, clock=clock, quotas=budgeted(clock, MemoryQuotas(clock), 2))
    got = price_each(chain, list("ABCD"), RUN_DATE, NEW_YORK)
    assert [getattr(g, "provider", None) for g in got.values()] == ["second", "second", None, None]
    assert sum(second.calls.values()) == 2 and chain.calls["second"] == 2
    assert chain.quota_exhausted == {"second": 2}
    failure = got["C"]
    assert isinstance(failure, PriceFailure) and "daily budget of 2 call(s) spent" in failure.detail


def test_a_spent_budget_alone_does_not_make_a_symbol_a_provider_error() -> None:
    # The first provider answered (no such symbol) and the second's budget is spent:
    # retrying today cannot help, so the plan is price_unavailable, not provider_error.
    clock = FakeClock()
    store = MemoryQuotas(clock)
    store.spend("second", "k", 1)
    second = FakePriceSource("second", {"A": quote("second", "A")})
    chain = chain_of(
        FakePriceSource("first"), second, clock=clock, quotas=budgeted(clock, store, 1)
    )
    got = price(chain, "A")
    assert isinstance(got, PriceFailure) and got.reason == Reason.PRICE_UNAVAILABLE
    assert second.calls["A"] == 0
    # ...but a provider that failed as well still makes it a provider_error.
    failing = FakePriceSource("first", {"B": ProviderUnavailable("first", "B", "timed out")})
    chain = chain_of(failing, second, clock=clock, quotas=budgeted(clock, store, 1))
    got = price(chain, "B")
    assert isinstance(got, PriceFailure) and got.reason == Reason.PROVIDER_ERROR


def test_a_retry_after_from_one_caller_pauses_the_provider_for_every_process() -> None:
    clock = FakeClock()
    store = MemoryQuotas(clock)
    throttled = Throttled("first", "A", "HTTP 429", retry_after=20)
    source = FakePriceSource("first", {"A": [throttled, quote("first", "A")]})
    quota = ProviderQuota(store, "first", "k", calls_per_minute=600, clock=clock, sleep=clock.sleep)
    chain = chain_of(source, clock=clock, quotas={"first": quota})
    start = clock()
    assert isinstance(price(chain, "A"), Quote)
    # Another process with the same key gets no slot before the pause ends.
    slot, now = store.lease("first", "k", 1, 0.1)
    assert slot.first >= start + 20 and now >= start + 20


def rates(base: str = "EUR", age: timedelta = timedelta(hours=14)) -> FxRates:
    return FxRates(
        provider="fakefx",
        base=base,
        rates={"USD": Decimal("1.086"), "JPY": Decimal("164.2"), "BAD": Decimal(0)},
        time=NOW - age,
    )


def test_fx_returns_the_usable_rates_of_the_base() -> None:
    got = chain_of(fx=FakeFxSource({"EUR": rates()})).fx("EUR", RUN_DATE)
    assert isinstance(got, FxRates)
    assert got.rates["USD"] == Decimal("1.086") and "BAD" not in got.rates


def test_fx_uses_the_sources_cache_without_counting_a_call() -> None:
    fx = FakeFxSource({"EUR": rates()})
    fx.cache["EUR"] = rates()
    chain = chain_of(fx=fx)
    assert isinstance(chain.fx("EUR", RUN_DATE), FxRates)
    assert fx.calls["EUR"] == 0 and chain.calls["fakefx"] == 0


def test_fx_failures_are_classified_like_prices() -> None:
    fx = FakeFxSource(
        {
            "XYZ": UnknownSymbol("fakefx", "XYZ", "unsupported-code"),
            "GBP": ProviderBadResponse("fakefx", "GBP", "malformed-request"),
            "CHF": rates("CHF", age=timedelta(days=9)),
        }
    )
    chain = chain_of(fx=fx)
    reasons = {base: getattr(chain.fx(base, RUN_DATE), "reason", None) for base in fx.script}
    assert reasons == {
        "XYZ": Reason.PRICE_UNAVAILABLE,
        "GBP": Reason.PROVIDER_ERROR,
        "CHF": Reason.PRICE_UNAVAILABLE,
    }


def test_fx_without_a_provider_is_a_provider_error() -> None:
    got = chain_of(FakePriceSource("first")).fx("EUR", RUN_DATE)
    assert isinstance(got, PriceFailure) and got.reason == Reason.PROVIDER_ERROR
