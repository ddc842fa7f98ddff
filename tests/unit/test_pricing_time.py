"""The pricing-time estimate: calls per provider and the time they take at the configured rates."""

from __future__ import annotations

import pytest

from planner.pricing_time import Pace, about, estimate_pricing

FINNHUB_FREE = Pace("finnhub", 60)
FX_FREE = Pace("exchangerate", 60)


def test_two_thousand_symbols_at_sixty_a_minute_take_about_34_minutes() -> None:
    estimate = estimate_pricing(symbols=2000, fx_bases=0, price=FINNHUB_FREE, fx=FX_FREE)
    assert estimate.calls == 2000
    assert str(estimate.work[0]) == "2,000 symbols at 60/min (finnhub): about 34 min"
    assert 33 * 60 < estimate.seconds < 35 * 60


def test_each_provider_takes_its_own_calls_at_its_own_pace() -> None:
    estimate = estimate_pricing(
        symbols=900, fx_bases=3, price=Pace("finnhub", 300), fx=Pace("exchangerate", 60)
    )
    assert [(w.pace.provider, w.calls) for w in estimate.work] == [
        ("finnhub", 900),
        ("exchangerate", 3),
    ]
    assert estimate.calls == 903
    assert str(estimate) == (
        "900 symbols at 300/min (finnhub): about 3 min; 3 FX bases at 60/min (exchangerate): "
        "about 3 s"
    )


def test_work_a_provider_does_not_have_is_left_out_of_what_is_said() -> None:
    one = estimate_pricing(symbols=1, fx_bases=0, price=FINNHUB_FREE, fx=FX_FREE)
    assert str(one) == "1 symbol at 60/min (finnhub): about 1 s"
    none = estimate_pricing(symbols=0, fx_bases=0, price=FINNHUB_FREE, fx=FX_FREE)
    assert str(none) == "nothing to fetch" and none.seconds == 0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "about 0 s"), (45.4, "about 45 s"), (89, "about 89 s"), (2040, "about 34 min"),
     (5340, "about 89 min"), (5400, "about 1 h 30 min"), (7200, "about 2 h")],
)  # fmt: skip
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    assert about(seconds) == text


def test_negative_work_is_refused() -> None:
    with pytest.raises(ValueError):
        estimate_pricing(symbols=-1, fx_bases=0, price=FINNHUB_FREE, fx=FX_FREE)
