"""Schema migrations: numbered SQL files applied in order, each in its own transaction.

An advisory lock serialises concurrent `migrate` calls (two containers
starting together), `schema_migrations` records what is applied with a
checksum, and a second run applies nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from psycopg2.extensions import connection

from common.domain.errors import ConfigError
from common.platform.logging import get_logger

log = get_logger(__name__)

# pg_advisory_lock key: any constant unique to this job ("worthy" in ASCII).
MIGRATION_LOCK_KEY = 0x776F72746879


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def bundled_migrations() -> list[Migration]:
    """The SQL files shipped in `common/adapters/store/migrations`, in version order."""
    found = []
    for item in resources.files("common.adapters.store.migrations").iterdir():
        if item.name.endswith(".sql"):
            version, _, rest = item.name.partition("_")
            found.append(Migration(version, rest.removesuffix(".sql"), item.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


def migrate(conn: connection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply every migration not yet applied; return the versions applied now."""
    migrations = bundled_migrations() if migrations is None else migrations
    conn.autocommit = True
    applied_now: list[str] = []
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            cur.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    TEXT PRIMARY KEY,
                       name       TEXT NOT NULL,
                       checksum   TEXT NOT NULL,
                       applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
            )
            cur.execute("SELECT version, checksum FROM schema_migrations")
            done = dict(cur.fetchall())
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise ConfigError(
                            {
                                f"migration {migration.version}": "changed after it was "
                                "applied; add a new migration instead of editing it"
                            }
                        )
                    continue
                conn.autocommit = False
                with conn:  # one transaction: the schema change and its record
                    cur.execute(migration.sql)
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) "
                        "VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                conn.autocommit = True
                applied_now.append(migration.version)
                log.info("applied migration %s_%s", migration.version, migration.name)
        finally:
            conn.autocommit = True
            cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now
