"""infra/db-grants.sql applied to the real test database, then exercised as the role.

The suite itself runs as a superuser, so nothing else would notice a grant the
batch lacks or one it should not have.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest

from common.adapters.store.quotas import PostgresQuotas
from tests.cfn import ROOT

GRANTS = ROOT / "infra" / "db-grants.sql"
Connection = psycopg2.extensions.connection


@pytest.fixture
def batch_role(db: Connection) -> Connection:
    """The test database with the grants applied; `db` itself is still the owner."""
    with db.cursor() as cur:
        cur.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
        (may_create_roles,) = cur.fetchone() or (False,)
        if not may_create_roles:
            pytest.skip("the test database role cannot create roles")
        cur.execute(GRANTS.read_text("utf-8"))
        cur.execute(
            "INSERT INTO recurring_investments (user_id, symbol, amount, currency, frequency,"
            " start_date, next_run_date) VALUES ('u1', 'AAPL', 100, 'USD', 'monthly',"
            " '2026-01-05', '2026-11-27')"
        )
    return db


@contextmanager
def as_batch(db: Connection) -> Iterator[psycopg2.extensions.cursor]:
    with db.cursor() as cur:
        cur.execute("SET ROLE worthy_batch")
        try:
            yield cur
        finally:
            cur.execute("RESET ROLE")


def allowed(db: Connection, sql: str, params: tuple[Any, ...] = ()) -> bool:
    with as_batch(db) as cur:
        try:
            cur.execute(sql, params)
        except psycopg2.errors.InsufficientPrivilege:
            return False
    return True


def test_the_batch_reads_plans_and_moves_only_their_schedule(batch_role: Connection) -> None:
    assert allowed(batch_role, "SELECT * FROM recurring_investments")
    assert allowed(batch_role, "SELECT id FROM recurring_investments FOR UPDATE")
    assert allowed(
        batch_role,
        "UPDATE recurring_investments SET next_run_date = '2026-12-28',"
        " runs_completed = runs_completed + 1, status = 'active', updated_at = now()",
    )
    assert not allowed(batch_role, "UPDATE recurring_investments SET amount = 1000000")
    assert not allowed(batch_role, "UPDATE recurring_investments SET version = version + 1")
    assert not allowed(batch_role, "INSERT INTO recurring_investments (user_id) VALUES ('x')")
    assert not allowed(batch_role, "DELETE FROM recurring_investments")


def test_the_batch_records_purchases_and_cannot_delete_them(batch_role: Connection) -> None:
    assert allowed(
        batch_role,
        "INSERT INTO assets (user_id, symbol, exchange, currency, quantity, cost_basis)"
        " VALUES ('u1', 'AAPL', 'XNYS', 'USD', 1, 100)"
        " ON CONFLICT (user_id, symbol, exchange) DO UPDATE"
        " SET quantity = assets.quantity + EXCLUDED.quantity",
    )
    assert allowed(
        batch_role,
        "INSERT INTO transactions (user_id, asset_id, plan_id, run_id, trade_date,"
        " scheduled_date, quantity, price, price_currency, amount, currency)"
        " SELECT 'u1', id, 1, 'XNYS-20261127', '2026-11-27', '2026-11-27', 1, 100, 'USD',"
        " 100, 'USD' FROM assets ON CONFLICT (plan_id, scheduled_date) DO NOTHING",
    )
    assert not allowed(batch_role, "UPDATE transactions SET quantity = 0")
    for table in ("transactions", "assets"):
        assert not allowed(batch_role, f"DELETE FROM {table}")
        assert not allowed(batch_role, f"TRUNCATE {table} CASCADE")


def test_the_batch_writes_its_own_tables(batch_role: Connection) -> None:
    assert allowed(
        batch_role,
        "INSERT INTO batch_runs (run_id, market, run_date, status)"
        " VALUES ('XNYS-20261127', 'XNYS', '2026-11-27', 'planning')"
        " ON CONFLICT (run_id) DO UPDATE SET status = EXCLUDED.status",
    )
    assert allowed(
        batch_role,
        "INSERT INTO batch_chunks (run_id, chunk_index, items) VALUES ('XNYS-20261127', 0, 1)",
    )
    assert allowed(
        batch_role,
        "INSERT INTO plan_executions (plan_id, scheduled_date, run_id, status, reason)"
        " VALUES (1, '2026-11-27', 'XNYS-20261127', 'failed', 'provider_error')"
        " ON CONFLICT (plan_id, scheduled_date) DO UPDATE SET reason = EXCLUDED.reason",
    )
    assert allowed(
        batch_role,
        "INSERT INTO run_quotes (run_id, kind, key, value, source, quote_time)"
        " VALUES ('XNYS-20261127', 'price', 'AAPL', 100, 'finnhub', now())",
    )
    assert allowed(batch_role, "SELECT pg_advisory_xact_lock(42)")
    assert allowed(batch_role, "SELECT version FROM schema_migrations")
    assert not allowed(
        batch_role, "INSERT INTO schema_migrations (version, name, checksum) VALUES ('9', 'x', 'y')"
    )
    assert not allowed(batch_role, "DELETE FROM batch_runs")
    assert allowed(batch_role, "DELETE FROM batch_chunks WHERE run_id = 'XNYS-20261127'")
    assert allowed(batch_role, "CREATE TEMP TABLE stage (a int) ON COMMIT DELETE ROWS")


def test_the_batch_cannot_change_the_schema(batch_role: Connection) -> None:
    assert not allowed(batch_role, "DROP TABLE run_quotes")
    assert not allowed(batch_role, "ALTER TABLE batch_runs ADD COLUMN note TEXT")
    assert not allowed(batch_role, "CREATE INDEX ON transactions (price)")


def test_applying_the_grants_again_takes_back_what_they_do_not_give(
    batch_role: Connection,
) -> None:
    with batch_role.cursor() as cur:
        cur.execute("GRANT DELETE ON transactions TO worthy_batch")
        cur.execute("GRANT UPDATE (amount) ON recurring_investments TO worthy_batch")
        cur.execute(GRANTS.read_text("utf-8"))
    assert not allowed(batch_role, "DELETE FROM transactions")
    assert not allowed(batch_role, "UPDATE recurring_investments SET amount = 1")
    assert allowed(batch_role, "UPDATE recurring_investments SET next_run_date = '2026-12-28'")


def test_the_role_is_limited_to_the_connection_budget(batch_role: Connection) -> None:
    """docs/database.md "Connection budget": 8 / 0.25 = 32 containers x WRITE_CONNECTIONS 2 = 64,
    plus room for an operator."""
    with batch_role.cursor() as cur:
        cur.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'worthy_batch'")
        assert cur.fetchone() == (70,)
        cur.execute("ALTER ROLE worthy_batch CONNECTION LIMIT -1")
        cur.execute(GRANTS.read_text("utf-8"))
        cur.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'worthy_batch'")
        assert cur.fetchone() == (70,), "applying the file again restores the limit"
    readme = (ROOT / "docs" / "database.md").read_text("utf-8")
    assert "CONNECTION LIMIT 70" in readme


def test_the_role_may_delete_a_canary_run_and_nothing_else(batch_role: Connection) -> None:
    with batch_role.cursor() as cur:
        cur.execute(
            "INSERT INTO batch_runs (run_id, market, run_date, status, detail) VALUES"
            " ('XNYS-20261128', 'XNYS', '2026-11-28', 'succeeded', 'canary'),"
            " ('XNYS-20261127', 'XNYS', '2026-11-27', 'succeeded', NULL),"
            " ('XNYS-20261129', 'XNYS', '2026-11-29', 'succeeded', NULL)"
        )
        cur.execute(
            "INSERT INTO batch_chunks (run_id, chunk_index, items) VALUES ('XNYS-20261128', 0, 0)"
        )
        cur.execute(
            "INSERT INTO plan_executions (plan_id, scheduled_date, run_id, status, reason)"
            " VALUES (1, '2026-11-29', 'XNYS-20261129', 'failed', 'provider_error')"
        )
    assert not allowed(batch_role, "DELETE FROM batch_runs WHERE run_id = 'XNYS-20261128'")
    with as_batch(batch_role) as cur:
        cur.execute("SELECT delete_canary_run('XNYS-20261128')")  # a Saturday
        assert cur.fetchone() == (1,)
        cur.execute("SELECT delete_canary_run('XNYS-20261127')")  # a Friday: left alone
        assert cur.fetchone() == (0,)
        with pytest.raises(psycopg2.errors.RaiseException, match="not a canary"):
            cur.execute("SELECT delete_canary_run('XNYS-20261129')")  # a Sunday that bought
    with batch_role.cursor() as cur:
        cur.execute("SELECT run_id FROM batch_runs ORDER BY run_id")
        assert cur.fetchall() == [("XNYS-20261127",), ("XNYS-20261129",)]
        cur.execute("SELECT count(*) FROM batch_chunks")
        assert cur.fetchone() == (0,)


def test_the_batch_leases_call_slots_and_counts_daily_budgets(
    batch_role: Connection, database_dsn: str
) -> None:
    def as_role() -> Connection:
        conn = psycopg2.connect(database_dsn)
        with conn.cursor() as cur:
            cur.execute("SET ROLE worthy_batch")
        conn.commit()
        return conn

    quotas = PostgresQuotas(as_role)
    try:
        lease, _ = quotas.lease("finnhub", "0123456789abcdef", 2, 1.0)
        quotas.pause("finnhub", "0123456789abcdef", 1.0)
        assert quotas.spend("alphavantage", "0123456789abcdef", 25)
    finally:
        quotas.close()
    assert lease.count == 2
    assert not allowed(batch_role, "DELETE FROM provider_limits")
    assert not allowed(batch_role, "DELETE FROM provider_daily_calls")
