"""Prices and FX rates once per run, shared by every child through `run_quotes`.

The first child that needs a symbol (or an FX base) takes a per-key lock,
checks the stored quotes again, asks the price chain, and stores a valid
quote; every other child waits on the lock, then reads the stored value, and
so does every rerun of the run. Failures are not stored, so a rerun asks again.

In bulk: one transaction try-locks every missing key at once, fetches the
ones it got and stores them together; only keys another child holds are
then waited for one by one. A chunk costs a handful of round trips, not
several per symbol. The SQL is the store's (common/adapters/store/quotes.py).

A held lock means a live child is working on the key (a dead child's locks go
with its connection), and when the providers' rates set the pace it may hold
it for as long as its own pricing takes. So a wait that reaches the
connection's lock_timeout is waited again, up to the attempt's budget
(EXECUTOR_TIMEOUT_SECONDS): giving up sooner would fail the plans of a symbol
split across chunks and spend a Batch attempt for nothing.

`price_chunk` is the executor's price step: it prices one chunk through a
QuoteBook and records what the providers cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import TYPE_CHECKING, TypeVar

from common.adapters.marketdata.limits import pacing_timings
from common.adapters.marketdata.quotes import FxRates, Price, Priced, PriceFailure, Quote, fx_key
from common.adapters.ports import QuoteStore
from common.adapters.store.quotes import Kind, LockNotAvailable
from common.domain.calendar import market_timezone
from common.domain.statuses import Reason
from common.platform.logging import carry_context, get_logger
from common.platform.progress import HEARTBEAT_SECONDS, Progress
from executor.context import ChunkRun, elapsed_ms

if TYPE_CHECKING:
    from common.adapters.marketdata.chain import PriceChain

T = TypeVar("T")
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Pricing:
    """What the price step found, and what it cost."""

    prices: dict[str, Priced]  # symbol ->
    rates: dict[tuple[str, str], Priced]  # (currency, asset_currency) ->
    api_calls: dict[str, int]  # provider -> HTTP requests, retries included
    quota_exhausted: dict[str, int]  # provider -> keys skipped, its daily budget spent
    timings: dict[str, int]  # price_ms and the quota_* pacing costs


def price_chunk(run: ChunkRun) -> Pricing:
    """Every price and FX rate the chunk's plans need, each fetched at most once per run."""
    ticks = time.monotonic()
    market_data = run.deps.market_data
    book = QuoteBook(
        run.session.quotes,
        market_data.chain,  # built when the first price must be fetched
        run.manifest.run_date,
        market_timezone(run.manifest.market),
        run.deps.price_fetch_threads,
        run.deps.quote_wait_seconds,
    )
    symbols = {p.symbol for p in run.plans}
    pairs = {(p.currency, p.asset_currency) for p in run.plans if p.currency != p.asset_currency}
    bases = {base for base, _ in pairs}
    total = len(symbols) + len(bases)
    unit = "symbols and FX bases" if bases else "symbols"
    with Progress(total, "pricing", unit=unit, every=HEARTBEAT_SECONDS) as bar:
        book.on_priced = bar.advance
        prices = book.prices(symbols)
        rates = book.fx_rates(pairs)
    timings = {"price_ms": elapsed_ms(ticks)}
    used = market_data.built
    if used is None:  # every price and rate was stored: no call, nothing paced
        return Pricing(prices, rates, {}, {}, {**timings, **pacing_timings(())})
    # Pricing is done: give the quota store's connection back before the writers take theirs.
    used.quota_store.close()
    return Pricing(
        prices,
        rates,
        api_calls=dict(used.calls),
        quota_exhausted=dict(used.chain.quota_exhausted),
        timings={**timings, **pacing_timings(used.quotas.values())},
    )


class QuoteBook:
    """The run's quotes, fetched at most once per key across all children."""

    def __init__(
        self,
        quotes: QuoteStore,
        chain: Callable[[], PriceChain],  # asked only when a key must be fetched
        run_date: date,
        tz: tzinfo,
        fetch_threads: int = 1,
        wait_seconds: float = 0.0,
    ) -> None:
        self._quotes = quotes
        self._chain = chain
        self._wait_seconds = wait_seconds  # how long to keep waiting for a held key
        self._run_date = run_date
        self._tz = tz
        self._fetch_threads = fetch_threads
        # Told how many keys (symbols, then FX bases) each step settled: the chunk's progress.
        self.on_priced: Callable[[int], None] = _ignore

    def prices(self, symbols: Iterable[str]) -> dict[str, Priced]:
        wanted = sorted(set(symbols))
        found: dict[str, Priced] = dict(self._quotes.load(Kind.PRICE, wanted))
        self.on_priced(len(found))
        missing = [s for s in wanted if s not in found]
        if missing:
            for symbol in self._fetch_prices_in_bulk(missing, found):
                found[symbol] = self._fetch_price(symbol)
                self.on_priced(1)
        return found

    def fx_rates(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Priced]:
        wanted = sorted(set(pairs))
        stored = self._quotes.load(Kind.FX, [fx_key(b, q) for b, q in wanted])
        found: dict[tuple[str, str], Priced] = {
            (b, q): stored[fx_key(b, q)] for b, q in wanted if fx_key(b, q) in stored
        }
        bases = {b for b, _ in wanted}
        missing = sorted({b for b, q in wanted if (b, q) not in found})
        self.on_priced(len(bases) - len(missing))
        for base in missing:
            quotes = [q for b, q in wanted if b == base and (b, q) not in found]
            for quote, priced in self._fetch_fx(base, quotes).items():
                found[(base, quote)] = priced
            self.on_priced(1)
        return found

    def _fetch_prices_in_bulk(self, symbols: list[str], found: dict[str, Priced]) -> list[str]:
        """Fetch and store every symbol no other child is fetching; return the others."""
        with self._quotes.transaction() as tx:
            mine = tx.try_lock(Kind.PRICE, symbols)
            stored = tx.load(Kind.PRICE, mine)
            found.update(stored)
            self.on_priced(len(stored))
            todo = [s for s in mine if s not in found]
            tx.store(Kind.PRICE, self._fetch_in_threads(todo, found) if todo else [])
        taken = set(mine)
        return [s for s in symbols if s not in taken]

    def _fetch_in_threads(
        self, symbols: list[str], found: dict[str, Priced]
    ) -> list[tuple[str, Price]]:
        """Ask the chain for each symbol; what it answered goes into `found`, the quotes
        (to store) are returned. Provider calls overlap (each waits on the network); the
        chain's shared limiter still paces them to each provider's limit."""
        price = carry_context(self._chain().price)
        fetched: list[tuple[str, Price]] = []
        with ThreadPoolExecutor(self._fetch_threads, thread_name_prefix="price") as pool:
            answers = pool.map(lambda symbol: price(symbol, self._run_date, self._tz), symbols)
            for symbol, got in zip(symbols, answers, strict=True):
                found[symbol] = got if isinstance(got, PriceFailure) else _from_quote(got)
                self.on_priced(1)
                if isinstance(got, Quote):
                    fetched.append((symbol, _from_quote(got)))
        return fetched

    def _fetch_price(self, symbol: str) -> Priced:
        def fetch() -> Priced:
            with self._quotes.transaction() as tx:
                tx.lock(Kind.PRICE, symbol)
                stored = tx.load(Kind.PRICE, [symbol])
                if symbol in stored:
                    return stored[symbol]
                got = self._chain().price(symbol, self._run_date, self._tz)
                if isinstance(got, PriceFailure):
                    return got
                tx.store(Kind.PRICE, [(symbol, _from_quote(got))])
                return _from_quote(got)

        found = self._patiently(fetch, symbol)
        if found is None:
            return PriceFailure(symbol, Reason.PROVIDER_ERROR, "another child is still pricing it")
        return found

    def _fetch_fx(self, base: str, quotes: list[str]) -> dict[str, Priced]:
        keys = [fx_key(base, q) for q in quotes]

        def fetch() -> dict[str, Priced]:
            with self._quotes.transaction() as tx:
                tx.lock(Kind.FX, base)
                stored = tx.load(Kind.FX, keys)
                if len(stored) == len(keys) or tx.base_fetched(base):
                    return {q: stored.get(fx_key(base, q)) or _no_rate(base, q) for q in quotes}
                got = self._chain().fx(base, self._run_date)
                if isinstance(got, PriceFailure):
                    return {q: got for q in quotes}
                rates = _rates(got)
                tx.store(Kind.FX, [(fx_key(base, q), price) for q, price in rates.items()])
                return {q: rates.get(q) or _no_rate(base, q) for q in quotes}

        found = self._patiently(fetch, base)
        if found is None:
            failure = PriceFailure(
                base, Reason.PROVIDER_ERROR, "another child is still fetching rates"
            )
            return {q: failure for q in quotes}
        return found

    def _patiently(self, fetch: Callable[[], T], key: str) -> T | None:
        """`fetch()`, which waits for `key`'s lock, tried again each time the wait reaches
        the lock_timeout, until `wait_seconds` have passed; None then."""
        deadline = time.monotonic() + self._wait_seconds
        while True:
            try:
                return fetch()
            except LockNotAvailable:
                if time.monotonic() >= deadline:
                    return None
                log.info("another child is still pricing %s: waiting on", key)


def _ignore(count: int) -> None:
    pass


def _from_quote(quote: Quote) -> Price:
    return Price(quote.price, quote.currency, quote.provider, quote.time)


def _rates(rates: FxRates) -> dict[str, Price]:
    return {
        quote: Price(value, quote, rates.provider, rates.time)
        for quote, value in rates.rates.items()
        if value.is_finite() and value > 0
    }


def _no_rate(base: str, quote: str) -> PriceFailure:
    return PriceFailure(fx_key(base, quote), Reason.PRICE_UNAVAILABLE, f"no {base}->{quote} rate")
