"""What a chunk's steps share: the process's dependencies and one attempt's context."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from common.adapters.ports import ChunkSession, ExecutorStores, RunFiles
from common.domain.calendar import MarketCalendar, calendar_for
from common.domain.models import JobUsage, PlanSnapshot, RunManifest
from common.domain.run_key import RunLocation

if TYPE_CHECKING:
    from common.adapters.marketdata.bootstrap import MarketData
    from common.adapters.marketdata.chain import PriceChain


class MarketDataOnDemand:
    """The chunk's market data, built the first time a price must be fetched: a child whose
    prices and rates are all stored (a rerun, a duplicate child) never imports or builds
    the providers' clients. The keys are checked and registered with `redact` before
    (`providers.provider_keys`), so a missing key is still a configuration error (78) at
    start, not a provider error inside the pricing threads."""

    def __init__(self, build: Callable[[], MarketData]) -> None:
        self._build = build
        self._built: MarketData | None = None
        self._lock = threading.Lock()

    def chain(self) -> PriceChain:
        with self._lock:
            if self._built is None:
                self._built = self._build()
            return self._built.chain

    @property
    def built(self) -> MarketData | None:
        """The market data if a price was fetched with it; None if nothing needed one."""
        return self._built

    def close(self) -> None:
        if self._built is not None:
            self._built.close()


@dataclass
class ExecutorDeps:
    stores: ExecutorStores  # the chunk's row, the run's quotes and the ledger
    files: RunFiles  # the run's files in S3
    market_data: MarketDataOnDemand
    clock: Callable[[], datetime]
    write_batch_size: int
    write_connections: int
    share_decimals: int
    price_fetch_threads: int = 1
    # How long a child keeps waiting for a quote another live child is fetching: an
    # attempt's budget (EXECUTOR_TIMEOUT_SECONDS); then the plans fail, provider_error.
    quote_wait_seconds: float = 0.0
    # Provider key variables that are not set; a canary chunk refuses to run with any.
    missing_keys: tuple[str, ...] = ()
    # This job's Fargate usage so far (common/adapters/jobclock.py), for results/N.json;
    # None: unmeasured.
    usage: Callable[[], JobUsage] | None = None


@dataclass(frozen=True, slots=True)
class ChunkRun:
    """One attempt at one chunk, as the price, write and report steps read it."""

    deps: ExecutorDeps
    where: RunLocation
    manifest: RunManifest
    index: int
    plans: list[PlanSnapshot]
    session: ChunkSession  # the chunk's own: its row, the run's quotes, its writers
    attempt: int
    started: datetime
    timings: Mapping[str, int]  # what loading took; each step returns its own
    calendars: Mapping[str, MarketCalendar] = field(default_factory=dict)  # from run.json

    def calendar(self, mic: str) -> MarketCalendar:
        """The run's calendar of `mic`: the planner's closures listed in run.json, else (a
        run.json written before they were) the library's."""
        found = self.calendars.get(mic)
        return found if found is not None else calendar_for(mic)


def elapsed_ms(since: float) -> int:
    """Milliseconds since `since`, a `time.monotonic()` reading."""
    return int((time.monotonic() - since) * 1000)
