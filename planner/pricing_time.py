"""How long a run's pricing takes at the providers' configured rates (pure).

Every child shares one limiter per provider and key, so the time does not
shrink with more children: a run needs one call per distinct symbol from the
first price provider and one per distinct FX base from the FX provider, and
each provider takes its calls at its own pace, one slot (`pacing.spacing`)
each. Fallback calls are not counted: they happen only when the first
provider fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.domain.pacing import spacing


@dataclass(frozen=True, slots=True)
class Pace:
    """A provider and the calls per minute its plan allows (its `*_CALLS_PER_MINUTE`)."""

    provider: str
    calls_per_minute: int


@dataclass(frozen=True, slots=True)
class ProviderWork:
    """The calls one provider must answer for a run, and how long they take at its pace."""

    pace: Pace
    calls: int
    what: str  # what one call fetches: "symbol", "FX base"

    @property
    def seconds(self) -> float:
        return self.calls * spacing(self.pace.calls_per_minute) if self.calls else 0.0

    def __str__(self) -> str:
        what = self.what if self.calls == 1 else f"{self.what}s"
        return (
            f"{self.calls:,} {what} at {self.pace.calls_per_minute:,}/min "
            f"({self.pace.provider}): {about(self.seconds)}"
        )


@dataclass(frozen=True, slots=True)
class PricingEstimate:
    """The run's pricing, provider by provider. `seconds` is the sum: a child prices, then
    converts, so that is how long the slowest child may spend pricing."""

    work: tuple[ProviderWork, ...]

    @property
    def calls(self) -> int:
        return sum(w.calls for w in self.work)

    @property
    def seconds(self) -> float:
        return sum(w.seconds for w in self.work)

    def __str__(self) -> str:
        return "; ".join(str(w) for w in self.work if w.calls) or "nothing to fetch"


def estimate_pricing(*, symbols: int, fx_bases: int, price: Pace, fx: Pace) -> PricingEstimate:
    """Calls and time for `symbols` distinct symbols and `fx_bases` distinct FX base
    currencies still to fetch (those already in `run_quotes` cost nothing)."""
    if symbols < 0 or fx_bases < 0:
        raise ValueError("symbols and fx_bases must be 0 or more")
    return PricingEstimate(
        (ProviderWork(price, symbols, "symbol"), ProviderWork(fx, fx_bases, "FX base"))
    )


def about(seconds: float) -> str:
    """A duration for people: "about 45 s", "about 34 min", "about 2 h 5 min"."""
    if seconds < 90:
        return f"about {round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h {rest} min" if rest else f"about {hours} h"
