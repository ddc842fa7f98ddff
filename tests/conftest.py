"""Shared fixtures: a real PostgreSQL for every test that asks for one.

When `DATABASE_URL` is set the tests use that server (the role needs
CREATEDB); otherwise the embedded pgserver under `.local/`. Each test
session (each xdist worker) gets its own freshly migrated database, and the
`db` fixture empties every table before the test: a clean schema in
milliseconds instead of a new database per test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest
from hypothesis import HealthCheck, settings

from common import embedded_pg
from common.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("default")


def _server_dsn() -> str:
    external = os.environ.get("DATABASE_URL")
    if external:
        return external
    os.environ.setdefault(embedded_pg.LOCAL_DIR_VARIABLE, str(ROOT / ".local"))
    return embedded_pg.ensure_running()


@pytest.fixture(scope="session")
def database_dsn(worker_id: str) -> Iterator[str]:
    """DSN of a freshly created and migrated database owned by this test session."""
    server = _server_dsn()
    name = f"worthy_test_{worker_id}"
    admin = psycopg2.connect(server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    dsn = psycopg2.extensions.make_dsn(server, dbname=name)
    conn = psycopg2.connect(dsn)
    migrate(conn)
    conn.close()
    yield dsn
    admin.close()


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    """The xdist worker name, or `main` without xdist."""
    workerinput = getattr(request.config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"


TABLES = (
    "plan_executions",
    "transactions",
    "assets",
    "run_quotes",
    "batch_chunks",
    "batch_runs",
    "recurring_investments",
)


@pytest.fixture
def db(database_dsn: str) -> Iterator[psycopg2.extensions.connection]:
    """An autocommit connection to an empty, migrated database."""
    conn = psycopg2.connect(database_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    yield conn
    conn.close()
