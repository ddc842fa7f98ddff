"""`run_quotes`: the run's prices and FX rates, fetched once and shared by every child.

Keys are locked with transaction-scoped advisory locks named after the run,
the kind and the key, so two children never fetch the same key at once; a
valid quote is stored and every later reader (another child, a rerun) uses it.
A `QuoteTransaction` is one such transaction: try-lock or lock keys, read what
is stored, store what was fetched; it commits when the block ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

import psycopg2.errors
import psycopg2.extras
from psycopg2.extensions import connection

from common.adapters.marketdata.quotes import Price


class Kind(StrEnum):
    """`run_quotes.kind`."""

    PRICE = "price"
    FX = "fx"


# Another child holds the key too long, and executor/pricing.py waits on: flow, not a
# failure, so it is caught narrowly there and never translated by error_map.
LockNotAvailable = psycopg2.errors.LockNotAvailable


class QuoteTransaction:
    """Statements inside one transaction of `RunQuotes.transaction()`."""

    def __init__(self, cur: Any, run_id: str) -> None:
        self._cur = cur
        self._run_id = run_id

    def try_lock(self, kind: Kind, keys: list[str]) -> list[str]:
        """The keys whose advisory lock this transaction got without waiting."""
        self._cur.execute(
            "SELECT k FROM unnest(%s::text[]) AS k "
            "WHERE pg_try_advisory_xact_lock(hashtextextended(%s || k, 0))",
            (keys, _lock_prefix(self._run_id, kind)),
        )
        return [row[0] for row in self._cur.fetchall()]

    def lock(self, kind: Kind, key: str) -> None:
        """Wait for the key's lock (up to the connection's lock_timeout: LockNotAvailable)."""
        self._cur.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (_lock_prefix(self._run_id, kind) + key,),
        )

    def load(self, kind: Kind, keys: list[str]) -> dict[str, Price]:
        return _load(self._cur, self._run_id, kind, keys)

    def base_fetched(self, base: str) -> bool:
        """Whether any rate from `base` is stored: its table was fetched once already."""
        self._cur.execute(
            "SELECT EXISTS (SELECT 1 FROM run_quotes WHERE run_id = %s AND kind = %s "
            "AND key LIKE %s)",
            (self._run_id, Kind.FX, f"{base}:%"),
        )
        return bool(self._cur.fetchone()[0])

    def store(self, kind: Kind, items: list[tuple[str, Price]]) -> None:
        psycopg2.extras.execute_values(
            self._cur,
            "INSERT INTO run_quotes (run_id, kind, key, value, currency, source, quote_time) "
            "VALUES %s ON CONFLICT DO NOTHING",
            [(self._run_id, kind, k, p.value, p.currency, p.source, p.time) for k, p in items],
        )


class RunQuotes:
    """One run's stored quotes, on one connection."""

    def __init__(self, conn: connection, run_id: str) -> None:
        self._conn = conn
        self._run_id = run_id

    def load(self, kind: Kind, keys: list[str]) -> dict[str, Price]:
        if not keys:
            return {}
        with self._conn, self._conn.cursor() as cur:
            return _load(cur, self._run_id, kind, keys)

    @contextmanager
    def transaction(self) -> Iterator[QuoteTransaction]:
        """One transaction; its locks are released when it commits (or rolls back)."""
        with self._conn, self._conn.cursor() as cur:
            yield QuoteTransaction(cur, self._run_id)


def _load(cur: Any, run_id: str, kind: Kind, keys: list[str]) -> dict[str, Price]:
    cur.execute(
        "SELECT key, value, currency, source, quote_time FROM run_quotes "
        "WHERE run_id = %s AND kind = %s AND key = ANY(%s)",
        (run_id, kind, keys),
    )
    return {key: Price(value, c, source, at) for key, value, c, source, at in cur.fetchall()}


def _lock_prefix(run_id: str, kind: Kind) -> str:
    return f"worthy-quote:{run_id}:{kind}:"
