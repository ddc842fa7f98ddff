"""An independent model of what the price chain must conclude, given the stub's faults.

Written from the contract (docs/design.md section 6, docs/market-data.md "Market data"), not from
the chain's code: providers in order (Finnhub, Alpha Vantage); 429, 5xx,
timeouts and throttle notices retried up to 3 attempts; a provider that
failed 3 keys in a row, or refused the key, is skipped for the rest of the
chunk; `price_unavailable` when every provider answered, `provider_error`
otherwise. The chaos tests compare each plan's recorded outcome with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from common.domain.models import PlanSnapshot
from devkit.stubs.market_faults import ALPHA_VANTAGE, EXCHANGE_RATE, FINNHUB

ATTEMPTS = 3
BREAKER_THRESHOLD = 3

RETRIED = frozenset({"http_429", "http_500", "slow", "note", "information", "quota-reached"})
BAD_ANSWER = frozenset({"garbage", "error_message", "malformed-request"})
ANSWERED = frozenset({"stale", "zeros", "empty_quote", "unsupported-code"})
DENIED = frozenset({"http_401", "invalid-key", "inactive-account"})

VALID = "valid"  # a usable quote
UNUSABLE = "unusable"  # the provider answered, but no usable quote (unknown, stale)
NO_ANSWER = "no_answer"  # failed after retries, refused the key, or skipped


@dataclass
class Scripted:
    """One scripted fault: `times` None means every call."""

    fault: str
    times: int | None = None


@dataclass
class _Breaker:
    failures: int = 0
    open: bool = False


@dataclass
class ChunkModel:
    """Walks one chunk's keys in the order the executor prices them."""

    faults: dict[tuple[str, str], Scripted]
    unknown: frozenset[str] = frozenset()
    breakers: dict[str, _Breaker] = field(default_factory=dict)
    served: set[tuple[str, str]] = field(default_factory=set)  # (provider, fault) answered

    def ask(self, provider: str, key: str) -> str:
        breaker = self.breakers.setdefault(provider, _Breaker())
        if breaker.open:
            return NO_ANSWER
        result = self._attempts(provider, key)
        if result in (VALID, UNUSABLE):
            breaker.failures = 0
        elif result == "denied":
            breaker.open = True
            return NO_ANSWER
        else:
            breaker.failures += 1
            breaker.open = breaker.failures >= BREAKER_THRESHOLD
        return result

    def _attempts(self, provider: str, key: str) -> str:
        for attempt in range(1, ATTEMPTS + 1):
            scripted = self.faults.get((provider, key))
            if scripted is None:
                return UNUSABLE if key in self.unknown else VALID
            if scripted.times is not None:
                scripted.times -= 1
                if scripted.times == 0:
                    del self.faults[(provider, key)]
            self.served.add((provider, scripted.fault))
            if scripted.fault in RETRIED:
                if attempt < ATTEMPTS:
                    continue
                return NO_ANSWER
            if scripted.fault in BAD_ANSWER:
                return NO_ANSWER
            if scripted.fault in ANSWERED:
                return UNUSABLE
            return "denied"
        raise AssertionError("unreachable")

    def price(self, symbol: str) -> tuple[str, str | None]:
        """("purchased", source) or ("failed", reason) as far as the price goes."""
        everyone_answered = True
        for provider in (FINNHUB, ALPHA_VANTAGE):
            answer = self.ask(provider, symbol)
            if answer == VALID:
                return "ok", provider
            everyone_answered &= answer != NO_ANSWER
        return "failed", "price_unavailable" if everyone_answered else "provider_error"

    def fx(self, base: str) -> tuple[str, str | None]:
        answer = self.ask(EXCHANGE_RATE, base)
        if answer == VALID:
            return "ok", EXCHANGE_RATE
        return "failed", "price_unavailable" if answer == UNUSABLE else "provider_error"


@dataclass(frozen=True)
class Expected:
    status: str  # purchased | failed
    reason: str | None
    source: str | None = None  # price source of a purchase


def expected_outcomes(
    chunks: Iterable[list[PlanSnapshot]],
    faults: Mapping[tuple[str, str], Scripted],
    unknown: Iterable[str] = (),
) -> tuple[dict[int, Expected], set[tuple[str, str]]]:
    """Each plan's expected outcome, and the (provider, fault) pairs the stub should serve.

    Every chunk is one child with its own chain, pricing its symbols in sorted
    order, then its FX bases in sorted order. Keys must not be shared between
    chunks (the run's stored quotes would make the order of children matter).
    """
    script = {k: Scripted(v.fault, v.times) for k, v in faults.items()}
    outcomes: dict[int, Expected] = {}
    served: set[tuple[str, str]] = set()
    for plans in chunks:
        model = ChunkModel(script, frozenset(unknown))
        prices = {s: model.price(s) for s in sorted({p.symbol for p in plans})}
        bases = sorted({p.currency for p in plans if p.currency != p.asset_currency})
        rates = {b: model.fx(b) for b in bases}
        served |= model.served
        for plan in plans:
            status, detail = prices[plan.symbol]
            if status == "failed":
                outcomes[plan.plan_id] = Expected("failed", detail)
                continue
            if plan.currency != plan.asset_currency:
                fx_status, fx_detail = rates[plan.currency]
                if fx_status == "failed":
                    outcomes[plan.plan_id] = Expected("failed", fx_detail)
                    continue
            outcomes[plan.plan_id] = Expected("purchased", None, detail)
    return outcomes, served
