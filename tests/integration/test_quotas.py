"""The shared quota store on a real PostgreSQL: slots, pauses and daily budgets, concurrently."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from functools import partial

import psycopg2.extensions
import pytest

from common.adapters.db import connect
from common.adapters.store.quotas import PostgresQuotas
from tests.factories import scalar

KEY = "0123456789abcdef"
OTHER_KEY = "fedcba9876543210"
Connection = psycopg2.extensions.connection


@pytest.fixture
def quotas(db: Connection, database_dsn: str) -> Iterator[PostgresQuotas]:
    store = PostgresQuotas(partial(connect, database_dsn))
    yield store
    store.close()


def test_leases_follow_each_other_slot_after_slot_from_now(quotas: PostgresQuotas) -> None:
    first, now = quotas.lease("finnhub", KEY, 3, 0.5)
    second, _ = quotas.lease("finnhub", KEY, 2, 0.5)
    assert now - 1 < first.first <= now
    assert first.slots == pytest.approx([first.first, first.first + 0.5, first.first + 1.0])
    assert second.first == pytest.approx(first.end)
    assert quotas.round_trips == 2


def test_an_idle_provider_starts_again_from_now_not_from_the_past(
    quotas: PostgresQuotas, db: Connection
) -> None:
    quotas.lease("finnhub", KEY, 1, 1.0)
    with db.cursor() as cur:
        cur.execute("UPDATE provider_limits SET next_slot = now() - interval '1 hour'")
    got, now = quotas.lease("finnhub", KEY, 1, 1.0)
    assert got.first == pytest.approx(now, abs=0.5)


def test_children_leasing_at_once_never_get_the_same_slot(
    database_dsn: str, db: Connection
) -> None:
    stores = [PostgresQuotas(partial(connect, database_dsn)) for _ in range(6)]

    def lease_many(store: PostgresQuotas) -> list[float]:
        return [slot for _ in range(20) for slot in store.lease("finnhub", KEY, 2, 0.01)[0].slots]

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            slots = sorted(s for got in pool.map(lease_many, stores) for s in got)
    finally:
        for store in stores:
            store.close()
    assert len(slots) == 6 * 20 * 2
    gaps = [b - a for a, b in zip(slots, slots[1:], strict=False)]
    assert min(gaps) >= 0.01 - 1e-4  # one call per slot: none shared, none closer


def test_a_pause_holds_back_every_later_lease(quotas: PostgresQuotas) -> None:
    quotas.lease("finnhub", KEY, 1, 0.1)
    quotas.pause("finnhub", KEY, 30)
    quotas.pause("finnhub", KEY, 5)  # a shorter pause does not shorten the first
    got, now = quotas.lease("finnhub", KEY, 1, 0.1)
    assert got.first == pytest.approx(now + 30, abs=0.5)


def test_a_pause_before_any_lease_holds_too(quotas: PostgresQuotas) -> None:
    quotas.pause("alphavantage", KEY, 10)
    got, now = quotas.lease("alphavantage", KEY, 1, 12.2)
    assert got.first == pytest.approx(now + 10, abs=0.5)


def test_each_provider_and_each_key_has_its_own_slots(quotas: PostgresQuotas) -> None:
    quotas.lease("finnhub", KEY, 1, 60.0)
    for provider, key in (("finnhub", OTHER_KEY), ("alphavantage", KEY)):
        got, now = quotas.lease(provider, key, 1, 60.0)
        assert got.first == pytest.approx(now, abs=0.5), (provider, key)


def test_a_daily_budget_allows_exactly_its_calls_and_the_next_day_is_fresh(
    quotas: PostgresQuotas, db: Connection
) -> None:
    day = date(2026, 11, 27)
    assert [quotas.spend("alphavantage", KEY, 5, day) for _ in range(7)] == [True] * 5 + [False] * 2
    assert quotas.spend("alphavantage", KEY, 5, day + timedelta(days=1))
    assert quotas.spend("alphavantage", OTHER_KEY, 5, day)
    counted = "SELECT calls FROM provider_daily_calls WHERE day = %s AND key_fingerprint = %s"
    assert scalar(db, counted, (day, KEY)) == 5


def test_a_budget_spent_by_many_children_at_once_is_never_overspent(
    database_dsn: str, db: Connection
) -> None:
    stores = [PostgresQuotas(partial(connect, database_dsn)) for _ in range(8)]
    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            taken = pool.map(lambda s: [s.spend("alphavantage", KEY, 5) for _ in range(4)], stores)
            granted = sum(sum(got) for got in taken)
    finally:
        for store in stores:
            store.close()
    assert granted == 5
    assert scalar(db, "SELECT sum(calls) FROM provider_daily_calls") == 5


def test_the_default_day_is_today_in_utc_on_the_database_clock(
    quotas: PostgresQuotas, db: Connection
) -> None:
    assert quotas.spend("exchangerate", KEY, 100)
    today = scalar(db, "SELECT (now() AT TIME ZONE 'UTC')::date")
    assert scalar(db, "SELECT day FROM provider_daily_calls") == today


def test_a_budget_of_zero_allows_no_call(quotas: PostgresQuotas, db: Connection) -> None:
    assert not quotas.spend("alphavantage", KEY, 0)
    assert scalar(db, "SELECT count(*) FROM provider_daily_calls") == 0


def test_a_closed_store_opens_a_new_connection_when_used_again(quotas: PostgresQuotas) -> None:
    quotas.lease("finnhub", KEY, 1, 0.01)
    quotas.close()
    got, _ = quotas.lease("finnhub", KEY, 1, 0.01)
    assert got.count == 1 and quotas.round_trips == 2
