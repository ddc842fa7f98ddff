"""Prices and FX rates once per run, shared by every child through `run_quotes`.

The first child that needs a symbol (or an FX base) takes a per-key advisory
lock, checks `run_quotes` again, asks the price chain, and stores a valid
quote; every other child waits on the lock, then reads the stored value, and
so does every rerun of the run. Failures are not stored, so a rerun asks again.

In bulk: one transaction try-locks every missing key at once, fetches the
ones it got and stores them together; only keys another child holds are
then waited for one by one. A chunk costs a handful of round trips, not
several per symbol.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

import psycopg2.errors
import psycopg2.extras
from psycopg2.extensions import connection

from common.logging import carry_context
from common.marketdata.chain import PriceChain
from common.marketdata.quotes import PRICE_UNAVAILABLE, PROVIDER_ERROR, FxRates, PriceFailure, Quote

PRICE = "price"
FX = "fx"


@dataclass(frozen=True, slots=True)
class Price:
    """A stored quote: a symbol's price, or units of QUOTE per 1 BASE for an FX pair."""

    value: Decimal
    currency: str | None
    source: str
    time: datetime


Priced = Price | PriceFailure


def fx_key(base: str, quote: str) -> str:
    return f"{base}:{quote}"


class QuoteBook:
    """The run's quotes, fetched at most once per key across all children."""

    def __init__(
        self,
        conn: connection,
        run_id: str,
        chain: PriceChain,
        run_date: date,
        tz: tzinfo,
        fetch_threads: int = 1,
    ) -> None:
        self._fetch_threads = fetch_threads
        self._conn = conn
        self._run_id = run_id
        self._chain = chain
        self._run_date = run_date
        self._tz = tz

    def prices(self, symbols: Iterable[str]) -> dict[str, Priced]:
        wanted = sorted(set(symbols))
        found: dict[str, Priced] = dict(self._load(PRICE, wanted))
        missing = [s for s in wanted if s not in found]
        if missing:
            contended = self._fetch_prices_in_bulk(missing, found)
            for symbol in contended:
                found[symbol] = self._fetch_price(symbol)
        return found

    def _fetch_prices_in_bulk(self, symbols: list[str], found: dict[str, Priced]) -> list[str]:
        """Fetch and store every symbol no other child is fetching; return the others."""
        with self._conn, self._conn.cursor() as cur:
            mine = self._try_lock(cur, PRICE, symbols)
            found.update(self._load_in(cur, PRICE, mine))
            todo = [s for s in mine if s not in found]
            fetched = []
            # Provider calls overlap (each waits on the network); the chain's rate
            # limiters still pace them to each provider's limit.
            with ThreadPoolExecutor(self._fetch_threads, thread_name_prefix="price") as pool:
                price = carry_context(self._chain.price)
                answers = pool.map(lambda symbol: price(symbol, self._run_date, self._tz), todo)
                for symbol, got in zip(todo, answers, strict=True):
                    found[symbol] = got if isinstance(got, PriceFailure) else _from_quote(got)
                    if isinstance(got, Quote):
                        fetched.append((symbol, _from_quote(got)))
            self._store(cur, PRICE, fetched)
        taken = set(mine)
        return [s for s in symbols if s not in taken]

    def _try_lock(self, cur: Any, kind: str, keys: list[str]) -> list[str]:
        """The keys whose advisory lock this transaction got without waiting."""
        cur.execute(
            "SELECT k FROM unnest(%s::text[]) AS k "
            "WHERE pg_try_advisory_xact_lock(hashtextextended(%s || k, 0))",
            (keys, self._lock_prefix(kind)),
        )
        return [row[0] for row in cur.fetchall()]

    def _lock_prefix(self, kind: str) -> str:
        return f"worthy-quote:{self._run_id}:{kind}:"

    def fx_rates(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Priced]:
        wanted = sorted(set(pairs))
        stored = self._load(FX, [fx_key(b, q) for b, q in wanted])
        found: dict[tuple[str, str], Priced] = {}
        for base, quote in wanted:
            if fx_key(base, quote) in stored:
                found[(base, quote)] = stored[fx_key(base, quote)]
        for base in sorted({b for b, q in wanted if (b, q) not in found}):
            quotes = [q for b, q in wanted if b == base and (b, q) not in found]
            for quote, priced in self._fetch_fx(base, quotes).items():
                found[(base, quote)] = priced
        return found

    # -- internals -----------------------------------------------------------------------

    def _load(self, kind: str, keys: list[str]) -> dict[str, Price]:
        if not keys:
            return {}
        with self._conn, self._conn.cursor() as cur:
            cur.execute(
                "SELECT key, value, currency, source, quote_time FROM run_quotes "
                "WHERE run_id = %s AND kind = %s AND key = ANY(%s)",
                (self._run_id, kind, keys),
            )
            return {key: Price(value, cur_, source, at) for key, value, cur_, source, at in cur}

    def _locked(self, kind: str, key: str) -> Any:
        """Start a transaction holding the key's advisory lock (released at commit)."""
        cur = self._conn.cursor()
        cur.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (self._lock_prefix(kind) + key,),
        )
        return cur

    def _fetch_price(self, symbol: str) -> Priced:
        try:
            with self._conn, self._locked(PRICE, symbol) as cur:
                stored = self._load_in(cur, PRICE, [symbol])
                if symbol in stored:
                    return stored[symbol]
                got = self._chain.price(symbol, self._run_date, self._tz)
                if isinstance(got, PriceFailure):
                    return got
                self._store(cur, PRICE, [(symbol, _from_quote(got))])
                return _from_quote(got)
        except psycopg2.errors.LockNotAvailable:
            return PriceFailure(symbol, PROVIDER_ERROR, "another child is still pricing it")

    def _fetch_fx(self, base: str, quotes: list[str]) -> dict[str, Priced]:
        keys = [fx_key(base, q) for q in quotes]
        try:
            with self._conn, self._locked(FX, base) as cur:
                stored = self._load_in(cur, FX, keys)
                if len(stored) == len(keys) or self._base_fetched(cur, base):
                    return {q: stored.get(fx_key(base, q)) or _no_rate(base, q) for q in quotes}
                got = self._chain.fx(base, self._run_date)
                if isinstance(got, PriceFailure):
                    return {q: got for q in quotes}
                rates = _rates(got)
                self._store(cur, FX, [(fx_key(base, q), price) for q, price in rates.items()])
                return {q: rates.get(q) or _no_rate(base, q) for q in quotes}
        except psycopg2.errors.LockNotAvailable:
            failure = PriceFailure(base, PROVIDER_ERROR, "another child is still fetching rates")
            return {q: failure for q in quotes}

    def _load_in(self, cur: Any, kind: str, keys: list[str]) -> dict[str, Price]:
        cur.execute(
            "SELECT key, value, currency, source, quote_time FROM run_quotes "
            "WHERE run_id = %s AND kind = %s AND key = ANY(%s)",
            (self._run_id, kind, keys),
        )
        return {key: Price(value, c, source, at) for key, value, c, source, at in cur.fetchall()}

    def _base_fetched(self, cur: Any, base: str) -> bool:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM run_quotes WHERE run_id = %s AND kind = %s "
            "AND key LIKE %s)",
            (self._run_id, FX, f"{base}:%"),
        )
        return bool(cur.fetchone()[0])

    def _store(self, cur: Any, kind: str, items: list[tuple[str, Price]]) -> None:
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO run_quotes (run_id, kind, key, value, currency, source, quote_time) "
            "VALUES %s ON CONFLICT DO NOTHING",
            [(self._run_id, kind, k, p.value, p.currency, p.source, p.time) for k, p in items],
        )


def _from_quote(quote: Quote) -> Price:
    return Price(quote.price, quote.currency, quote.provider, quote.time)


def _rates(rates: FxRates) -> dict[str, Price]:
    return {
        quote: Price(value, quote, rates.provider, rates.time)
        for quote, value in rates.rates.items()
        if value.is_finite() and value > 0
    }


def _no_rate(base: str, quote: str) -> PriceFailure:
    return PriceFailure(fx_key(base, quote), PRICE_UNAVAILABLE, f"no {base}->{quote} rate")
