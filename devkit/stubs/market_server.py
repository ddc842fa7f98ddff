"""A stub of Finnhub, Alpha Vantage and ExchangeRate-API on 127.0.0.1, for tests and local runs.

A real `ThreadingHTTPServer` (port 0 picks a free one) answering the three
APIs with their real response shapes, deterministic prices and rates,
per-key scripted faults (from Python or over HTTP), call counters, and, when
asked, each provider's per-minute and per-day limits per API key, throttled
the way that provider throttles (`market_limits`).

    with StubMarketServer() as stub:
        settings = Settings(finnhub_base_url=stub.finnhub_url, finnhub_api_key=stub.finnhub_key)
        stub.set_fault("finnhub", "AAPL", "http_429", times=1)
        ...
        assert stub.calls("finnhub") == 2

Standalone: `python -m devkit.stubs.market_server --port 8765` prints the
variables that point worthy-batch at it.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from devkit.stubs import market_bodies as bodies
from devkit.stubs.market_faults import CallLog, FaultBook
from devkit.stubs.market_handler import MarketHandler
from devkit.stubs.market_limits import KeyLimit, KeyLimits, Refusal, limits_from_environment

DEFAULT_FINNHUB_KEY = "stub-finnhub-key"
DEFAULT_ALPHA_VANTAGE_KEY = "stub-alpha-vantage-key"
DEFAULT_EXCHANGE_RATE_KEY = "stub-exchange-rate-key"
DEFAULT_SEED = "worthy"
POLL_SECONDS = 0.05  # how soon stop() is noticed
DEFAULT_SLOW_SECONDS = 2.0  # longer than any sane test read timeout, short enough to end


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for a handler sleeping in a SLOW fault

    def __init__(self, address: tuple[str, int], stub: StubMarketServer) -> None:
        self.stub = stub
        super().__init__(address, MarketHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that gave up on a slow answer reset the connection: expected, not news.
        return


class StubMarketServer:
    """The three providers on one loopback port. Thread-safe; start() before use."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        finnhub_key: str = DEFAULT_FINNHUB_KEY,
        alpha_vantage_key: str = DEFAULT_ALPHA_VANTAGE_KEY,
        exchange_rate_key: str = DEFAULT_EXCHANGE_RATE_KEY,
        seed: str = DEFAULT_SEED,
        prices: Mapping[str, Decimal] | None = None,
        prices_csv: str | Path | None = None,
        as_of: datetime | None = None,
        unknown_symbols: Iterable[str] = (),
        slow_seconds: float = DEFAULT_SLOW_SECONDS,
        clock: Callable[[], float] = time.time,
        limits: Mapping[str, KeyLimit] | None = None,
    ) -> None:
        if as_of is not None and as_of.utcoffset() is None:
            raise ValueError("as_of must be timezone-aware")
        self.finnhub_key = finnhub_key
        self.alpha_vantage_key = alpha_vantage_key
        self.exchange_rate_key = exchange_rate_key
        self.seed = seed
        table = bodies.load_prices_csv(prices_csv) if prices_csv else {}
        self.prices = {**table, **{s.upper(): p for s, p in (prices or {}).items()}}
        self.as_of = as_of  # quote time; None means the clock's now at each request
        self.unknown_symbols = {s.upper() for s in unknown_symbols}
        self.slow_seconds = slow_seconds
        self.clock = clock
        self.faults = FaultBook()
        self.calls_log = CallLog(clock)
        self.stopping = threading.Event()
        self.limits = KeyLimits(clock, limits)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Self:
        self.stopping.clear()
        self._server = _Server(self._address, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_SECONDS},
            name="stub-market-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- where it is -----------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def finnhub_url(self) -> str:
        return f"{self.url}/finnhub/api/v1"

    @property
    def alpha_vantage_url(self) -> str:
        return f"{self.url}/alphavantage"

    @property
    def exchange_rate_url(self) -> str:
        return f"{self.url}/exchangerate/v6"

    # -- what it answers -------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The variables that point worthy-batch at this stub (its keys are made up)."""
        return {
            "FINNHUB_BASE_URL": self.finnhub_url,
            "FINNHUB_API_KEY": self.finnhub_key,
            "ALPHA_VANTAGE_BASE_URL": self.alpha_vantage_url,
            "ALPHA_VANTAGE_API_KEY": self.alpha_vantage_key,
            "EXCHANGE_RATE_BASE_URL": self.exchange_rate_url,
            "EXCHANGE_RATE_API_KEY": self.exchange_rate_key,
        }

    def price_of(self, symbol: str) -> Decimal:
        """The price both providers quote for `symbol`."""
        symbol = symbol.upper()
        if symbol in self.prices:
            return self.prices[symbol]
        return bodies.seeded_price(self.seed, symbol)

    def rates_of(self, base: str) -> dict[str, Decimal]:
        """The rates ExchangeRate-API answers for `base`."""
        return bodies.rates_from(self.seed, base)

    def set_fault(
        self,
        provider: str,
        key: str,
        fault: str,
        times: int | None = None,
        *,
        retry_after: float = 1.0,
        delay: float | None = None,
    ) -> None:
        """Answer `provider`'s calls for `key` ("*": any) with `fault`: always, or `times` times."""
        self.faults.set(provider, key, fault, times, retry_after=retry_after, delay=delay)

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_rate_limit(self, provider: str, calls_per_minute: int | None) -> None:
        """Throttle `provider` like the real one past `calls_per_minute` calls of a key in any
        rolling minute (stub clock); None lifts it. The daily limit stays as it was."""
        self.set_limits(provider, calls_per_minute, self.limits.limit(provider).per_day)

    def set_limits(self, provider: str, per_minute: int | None, per_day: int | None) -> None:
        """`provider`'s limits per API key: calls in any rolling minute, calls a UTC day."""
        self.limits.set(provider, KeyLimit(per_minute, per_day))

    def admit(self, provider: str, api_key: str) -> Refusal | None:
        """Count a call of `api_key` against `provider`'s limits, or say why it is refused."""
        return self.limits.admit(provider, api_key)

    # -- what it was asked -----------------------------------------------------

    def calls(
        self, provider: str | None = None, endpoint: str | None = None, key: str | None = None
    ) -> int:
        """Requests received, optionally only those of one provider, endpoint and key."""
        return self.calls_log.count(provider, endpoint, key)

    def call_counts(self) -> dict[str, Any]:
        """The counters as `GET /_stub/calls` shows them."""
        return self.calls_log.as_json()

    def faults_served(self, provider: str, fault: str) -> int:
        """How many answers of `provider` were `fault` (the stub's own throttling included)."""
        return self.calls_log.served[(provider, fault)]

    def reset_calls(self) -> None:
        self.calls_log.reset()


def main(argv: list[str] | None = None) -> None:
    """Run the stub until interrupted, printing the settings that point at it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", default=DEFAULT_SEED)
    parser.add_argument("--prices-csv", type=Path, help="symbol,price rows that override the seed")
    parser.add_argument("--unknown", action="append", default=[], help="a symbol to not know")
    parser.add_argument(
        "--limits-from-env",
        action="store_true",
        help="enforce the *_CALLS_PER_MINUTE and *_CALLS_PER_DAY set in the environment, per key",
    )
    args = parser.parse_args(argv)
    stub = StubMarketServer(
        host=args.host,
        port=args.port,
        seed=args.seed,
        prices_csv=args.prices_csv,
        unknown_symbols=args.unknown,
        limits=limits_from_environment(os.environ) if args.limits_from_env else None,
    )
    with stub:
        # The stub's keys are made up, so printing them leaks nothing.
        for name, value in stub.environment().items():
            print(f"{name}={value}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
