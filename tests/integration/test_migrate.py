import threading

import psycopg2
import psycopg2.extensions
import pytest

from common.adapters.store.migrate import Migration, bundled_migrations, migrate
from common.domain.errors import ConfigError

DESIGN_TABLES = {
    "recurring_investments",
    "assets",
    "transactions",
    "plan_executions",
    "batch_runs",
    "batch_chunks",
    "run_quotes",
    "schema_migrations",
}


def _fresh_database(db: psycopg2.extensions.connection, name: str) -> str:
    with db.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    return psycopg2.extensions.make_dsn(db.dsn, dbname=name)


def _tables(dsn: str) -> set[str]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in cur.fetchall()}


def test_migrate_creates_every_table_then_changes_nothing_the_second_time(
    db: psycopg2.extensions.connection, worker_id: str
) -> None:
    dsn = _fresh_database(db, f"worthy_migrate_{worker_id}")
    conn = psycopg2.connect(dsn)
    assert migrate(conn) == [m.version for m in bundled_migrations()]
    assert _tables(dsn) >= DESIGN_TABLES
    assert migrate(conn) == []
    conn.close()


def test_two_processes_migrating_at_once_apply_each_migration_once(
    db: psycopg2.extensions.connection, worker_id: str
) -> None:
    dsn = _fresh_database(db, f"worthy_race_{worker_id}")
    results: list[list[str]] = []

    def run() -> None:
        conn = psycopg2.connect(dsn)
        results.append(migrate(conn))
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) for r in results) == [0, 0, 0, len(bundled_migrations())]


def test_an_edited_migration_is_refused(db: psycopg2.extensions.connection, worker_id: str) -> None:
    dsn = _fresh_database(db, f"worthy_edit_{worker_id}")
    conn = psycopg2.connect(dsn)
    migrate(conn, [Migration("0001", "t", "CREATE TABLE t (a int)")])
    with pytest.raises(ConfigError, match="changed after it was applied"):
        migrate(conn, [Migration("0001", "t", "CREATE TABLE t (a bigint)")])
    conn.close()


def test_a_failing_migration_leaves_nothing_half_applied(
    db: psycopg2.extensions.connection, worker_id: str
) -> None:
    dsn = _fresh_database(db, f"worthy_fail_{worker_id}")
    conn = psycopg2.connect(dsn)
    broken = Migration("0001", "broken", "CREATE TABLE half (a int); SELECT no_such_function()")
    with pytest.raises(psycopg2.errors.UndefinedFunction):
        migrate(conn, [broken])
    conn.close()
    assert "half" not in _tables(dsn)
    assert _tables(dsn) == {"schema_migrations"}
