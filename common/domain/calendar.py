"""Market calendars: which days an exchange trades, and what "today" is there.

A date is a market day for a MIC when it is a weekday and not one of
`holidays.financial_holidays(MIC)`. Pure: the clock is passed in.

The planner asks the `holidays` library (imported on the first calendar built)
and writes the run's closures into run.json; an executor child builds its
calendars from those (`MarketCalendar.from_closures`), so every child of a run
sees the planner's calendar and none pays for importing the library (a run.json
written before the closures were listed, or a day outside their years, is asked
of the library).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from common.domain.errors import ConfigError, RunDateRefused, UnsupportedMarket
from common.domain.run_key import RunKey

# ISO 10383 MICs that `holidays` has exchange calendars for, with each
# exchange's own time zone. Markets that trade Sunday to Thursday (XSAU) and
# non-exchange calendars (XECB, XFED, XSIF) are left out on purpose.
MARKET_TIMEZONES: dict[str, str] = {
    "XAMS": "Europe/Amsterdam",
    "XASX": "Australia/Sydney",
    "XATH": "Europe/Athens",
    "XBOG": "America/Bogota",
    "XBOM": "Asia/Kolkata",
    "XBRU": "Europe/Brussels",
    "XBUE": "America/Argentina/Buenos_Aires",
    "BVMF": "America/Sao_Paulo",
    "XCME": "America/Chicago",
    "XDUB": "Europe/Dublin",
    "XETR": "Europe/Berlin",
    "XFRA": "Europe/Berlin",
    "XHKG": "Asia/Hong_Kong",
    "IFEU": "Europe/London",
    "XIST": "Europe/Istanbul",
    "XJPX": "Asia/Tokyo",
    "XJSE": "Africa/Johannesburg",
    "XKAR": "Asia/Karachi",
    "XKRX": "Asia/Seoul",
    "XLIS": "Europe/Lisbon",
    "XLON": "Europe/London",
    "XMAD": "Europe/Madrid",
    "XMEX": "America/Mexico_City",
    "XMIL": "Europe/Rome",
    "XNAS": "America/New_York",
    "XNSE": "Asia/Kolkata",
    "XNYS": "America/New_York",
    "XNZE": "Pacific/Auckland",
    "XOSL": "Europe/Oslo",
    "XPAR": "Europe/Paris",
    "XSES": "Asia/Singapore",
    "XSHE": "Asia/Shanghai",
    "XSHG": "Asia/Shanghai",
    "XSWX": "Europe/Zurich",
    "XTAI": "Asia/Taipei",
    "XTSE": "America/Toronto",
    "XWAR": "Europe/Warsaw",
}

SUPPORTED_MICS: frozenset[str] = frozenset(MARKET_TIMEZONES)

# Exchanges whose plans run in another market's run because they keep the
# same calendar (Nasdaq closes exactly when the NYSE does; a unit test pins it).
RUN_MARKET: dict[str, str] = {"XNAS": "XNYS"}

DEFAULT_MARKET = "XNYS"


def market_code(text: str) -> str:
    """`text` as a supported market identifier code, upper case; ValueError saying why not."""
    if len(text) != 4 or not text.isalnum():
        raise ValueError(f"not a market identifier code: {text!r} (e.g. XNYS)")
    if text.upper() not in SUPPORTED_MICS:
        raise UnsupportedMarket(text.upper(), SUPPORTED_MICS)
    return text.upper()


def run_market_of(exchange: str) -> str:
    """The market whose run buys plans listed on `exchange`."""
    return RUN_MARKET.get(exchange, exchange)


def exchanges_of_run(market: str) -> tuple[str, ...]:
    """Every exchange whose plans are due in `market`'s run (the market first)."""
    return (market, *sorted(e for e, m in RUN_MARKET.items() if m == market))


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: caches key on it
class MarketCalendar:
    """Trading days and local time of one exchange."""

    mic: str
    timezone: ZoneInfo
    _closures: Any = field(repr=False, compare=False)

    def is_market_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._closures

    def closure_name(self, day: date) -> str | None:
        """Why the market is closed on `day`, or None when it trades."""
        if day.weekday() >= 5:
            return "weekend"
        name: str | None = self._closures.get(day)
        return name

    def roll_forward(self, day: date) -> date:
        """`day` itself if it is a market day, else the next market day (following convention)."""
        while not self.is_market_day(day):
            day += timedelta(days=1)
        return day

    def today(self, now: datetime) -> date:
        """The calendar date at the exchange at instant `now` (which must be aware)."""
        return today_at(self.mic, now)

    @classmethod
    def from_closures(
        cls, mic: str, first_year: int, last_year: int, days: Mapping[date, str]
    ) -> MarketCalendar:
        """The calendar of `mic` from closures known for whole years (run.json's); a day
        outside those years is asked of the library."""
        return cls(mic, market_timezone(mic), _KnownClosures(mic, first_year, last_year, days))


@dataclass(frozen=True)
class _KnownClosures:
    """Closures listed for `first_year`..`last_year`; the library's beyond them."""

    mic: str
    first_year: int
    last_year: int
    days: Mapping[date, str]

    def __contains__(self, day: object) -> bool:
        return self.get(day) is not None

    def get(self, day: object) -> str | None:
        if isinstance(day, datetime):  # as the library reads one: its date
            day = day.date()
        if not isinstance(day, date):
            return None
        if self.first_year <= day.year <= self.last_year:
            return self.days.get(day)
        found: str | None = calendar_for(self.mic)._closures.get(day)
        return found


def covered_years(mic: str) -> tuple[int, int]:
    """The first and last year the `holidays` library has `mic`'s closures for (its
    financial classes' `start_year` and `end_year`). Outside them the library lists no
    closure at all, so every weekday would count as a market day."""
    closures = calendar_for(mic)._closures
    return int(closures.start_year), int(closures.end_year)


def check_run_date(mic: str, day: date, today: date, *, allow_future: bool = False) -> None:
    """Raise `RunDateRefused` when `day` must not be run for `mic` (`today`, the market's
    current date, passed in; whether a day is a catch-up is `RunDay.catch_up`).

    Refused: a day outside the years of the market's calendar data, and a day after
    `today` unless `allow_future` (the operator means it)."""
    if day > today and not allow_future:
        raise RunDateRefused(
            f"{day} is in the future (today is {today} in {mic}): it would buy before the "
            "day, at earlier prices; pass --allow-future-date if you mean it"
        )
    first, last = covered_years(mic)
    if not first <= day.year <= last:
        raise RunDateRefused(
            f"{day} is outside the years {mic}'s calendar data covers ({first}-{last}); "
            "its holidays are unknown there"
        )


@dataclass(frozen=True)
class RunDay:
    """A run's day, resolved: its key, the market's date when it was resolved, and why the
    market is closed on the day (None: it trades)."""

    key: RunKey
    today: date
    closed: str | None

    @property
    def catch_up(self) -> bool:
        """A day before the market's today: the run catches up a missed day."""
        return self.key.run_date < self.today


def resolve_run_day(
    market: str, run_date: date | None, now: datetime, *, allow_future: bool = False
) -> RunDay:
    """The run of `market` on `run_date` (default: the market's today at `now`), checked: a
    market whose plans run in another market's run is a ConfigError, and so is a date
    `check_run_date` refuses (`RunDateRefused`)."""
    owner = run_market_of(market)
    if owner != market:
        why = f"{market} plans run in the {owner} run (same calendar); use --market {owner}"
        raise ConfigError({"--market": why})
    calendar = calendar_for(market)
    today = calendar.today(now)
    day = run_date or today
    check_run_date(market, day, today, allow_future=allow_future)
    return RunDay(RunKey(market, day), today, calendar.closure_name(day))


def library_closures(mic: str, first_year: int, last_year: int) -> dict[date, str]:
    """Every closure the `holidays` library lists for `mic` from 1 January of `first_year`
    to 31 December of `last_year`, with its name (some fall on a weekend: harmless, a
    weekend is closed anyway)."""
    closures = calendar_for(mic)._closures
    days: dict[date, str] = {}
    for year in range(first_year, last_year + 1):
        closures.get(date(year, 1, 1))  # the library computes a year when asked
        days.update((d, n) for d, n in closures.items() if d.year == year)
    return dict(sorted(days.items()))


def market_timezone(mic: str) -> ZoneInfo:
    """The exchange's own time zone; raises `UnsupportedMarket` for anything we do not know."""
    if mic not in MARKET_TIMEZONES:
        raise UnsupportedMarket(mic, SUPPORTED_MICS)
    return ZoneInfo(MARKET_TIMEZONES[mic])


def today_at(mic: str, now: datetime) -> date:
    """The calendar date at exchange `mic` at instant `now` (which must be aware)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(market_timezone(mic)).date()


@functools.lru_cache(maxsize=64)
def calendar_for(mic: str) -> MarketCalendar:
    """The library's calendar of `mic`; raises `UnsupportedMarket` for anything we do not
    know."""
    return MarketCalendar(mic=mic, timezone=market_timezone(mic), _closures=_exchange_holidays(mic))


def _exchange_holidays(mic: str) -> Any:
    """`holidays.financial_holidays(mic)`, importing only that exchange's module.

    The package `holidays.financial` imports every exchange and, through some of
    them, every country: ~250 modules and ~0.1 s that each executor child would pay
    for one calendar. The registry names the module of each MIC, which defines a
    class named after it; the module is loaded by itself (its imports are the
    library's base modules). A test checks that every supported MIC gets the same
    days both ways.
    """
    # Imported here, not at the top: only a calendar built from the library needs it.
    import holidays
    import holidays.registry

    for module_name, (_, *codes) in holidays.registry.FINANCIAL.items():
        if mic in codes:
            # Each code is a class of its own (Euronext's XATH has Athens' closures).
            module = _module_alone(f"holidays.financial.{module_name}")
            if module is not None and hasattr(module, mic):
                return getattr(module, mic)()
    return holidays.financial_holidays(mic)


def _module_alone(name: str) -> ModuleType | None:
    """Import `name` without running its package's `__init__` (None if it cannot be found)."""
    if name in sys.modules:
        return sys.modules[name]
    path = (
        Path(sys.modules["holidays"].__file__ or "")
        .parent.joinpath(*name.split(".")[1:])
        .with_suffix(".py")
    )
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.exists():
        return None
    module = importlib.util.module_from_spec(spec)
    # Registered only once it ran: an exchange module that imports a country may make
    # `holidays.financial` import itself meanwhile, which must find no half-made module.
    spec.loader.exec_module(module)
    return sys.modules.setdefault(name, module)


SATURDAY = 5  # date.weekday()


def last_weekend_day(today: date) -> date:
    """`today` on a Saturday or Sunday, else the Saturday before it."""
    if today.weekday() >= SATURDAY:
        return today
    return today - timedelta(days=today.weekday() - SATURDAY + 7)
