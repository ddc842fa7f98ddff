"""QuoteBook against a real PostgreSQL: a key another child holds is waited for as long as
that child is alive and working, up to the attempt's budget.

Child A holds the lock on AAPL in an open transaction (as its bulk pricing does while
the providers' rates make it slow); child B's connection has a short lock_timeout,
so B's wait for the lock times out several times before A stores the price.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import psycopg2
import psycopg2.extensions
import pytest

from common.adapters.marketdata.chain import PriceChain
from common.adapters.marketdata.quotes import Price, PriceFailure
from common.adapters.marketdata.retrying import RetryPolicy
from common.adapters.store.quotes import Kind, RunQuotes
from executor.pricing import QuoteBook
from tests.marketdata_fakes import NEW_YORK, NOW, RUN_DATE, FakeClock, FakePriceSource, quote

RUN_ID = "XNYS-20261127"
LOCK_TIMEOUT = "200ms"  # B's wait for a held key gives up this often (60 s in production)
A_PRICE = Price(Decimal("190.00"), "USD", "fakefinnhub", NOW)


def _child_b(
    dsn: str, wait_seconds: float
) -> tuple[QuoteBook, FakePriceSource, psycopg2.extensions.connection]:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    conn.autocommit = False
    source = FakePriceSource("fakefinnhub", {"AAPL": quote("fakefinnhub", "AAPL", "999")})
    clock = FakeClock(NOW)
    chain = PriceChain(
        [source], max_age_days=4, clock=clock, sleep=clock.sleep, retry=RetryPolicy(max_attempts=1)
    )
    book = QuoteBook(RunQuotes(conn, RUN_ID), lambda: chain, RUN_DATE, NEW_YORK, 1, wait_seconds)
    return book, source, conn


def _child_a_holds_aapl(dsn: str, seconds: float, stores: bool) -> threading.Thread:
    """Child A: lock AAPL, keep it `seconds`, then store its price (or not) and commit."""
    locked = threading.Event()

    def hold() -> None:
        conn = psycopg2.connect(dsn)
        try:
            with RunQuotes(conn, RUN_ID).transaction() as tx:
                tx.lock(Kind.PRICE, "AAPL")
                locked.set()
                time.sleep(seconds)
                if stores:
                    tx.store(Kind.PRICE, [("AAPL", A_PRICE)])
        finally:
            conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert locked.wait(10)
    return thread


def test_a_key_held_past_the_lock_timeout_is_waited_for_and_read_not_fetched_again(
    db: psycopg2.extensions.connection, database_dsn: str
) -> None:
    holder = _child_a_holds_aapl(database_dsn, seconds=1.5, stores=True)  # ~7 lock timeouts
    book, source, conn = _child_b(database_dsn, wait_seconds=60)
    try:
        started = time.monotonic()
        prices = book.prices(["AAPL"])
        waited = time.monotonic() - started
    finally:
        conn.close()
        holder.join(10)

    assert prices == {"AAPL": A_PRICE}  # A's price, read from run_quotes
    assert source.calls["AAPL"] == 0  # B asked no provider: one call per symbol per run
    assert waited >= 1.0  # it did wait out A, across several lock timeouts


def test_the_wait_ends_with_the_budget_and_the_plans_fail_for_a_retry(
    db: psycopg2.extensions.connection, database_dsn: str
) -> None:
    holder = _child_a_holds_aapl(database_dsn, seconds=3.0, stores=False)
    book, source, conn = _child_b(database_dsn, wait_seconds=0.5)
    try:
        prices = book.prices(["AAPL"])
    finally:
        conn.close()
        holder.join(10)

    failure = prices["AAPL"]
    assert isinstance(failure, PriceFailure)
    assert (failure.reason, failure.detail) == (
        "provider_error",
        "another child is still pricing it",
    )
    assert source.calls["AAPL"] == 0


@pytest.mark.parametrize("wait_seconds", [0.0, 60.0])
def test_a_free_key_is_fetched_once_and_stored_for_every_other_child(
    db: psycopg2.extensions.connection, database_dsn: str, wait_seconds: float
) -> None:
    book, source, conn = _child_b(database_dsn, wait_seconds)
    try:
        first = book.prices(["AAPL"])
        again = book.prices(["AAPL"])
    finally:
        conn.close()

    assert first == again == {"AAPL": Price(Decimal("999"), None, "fakefinnhub", NOW)}
    assert source.calls["AAPL"] == 1
