"""PostgreSQL connections: where the database is, and connecting with bounded retries."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from common.adapters.error_map import translate
from common.domain.errors import ConfigError, DatabaseUnavailable, TransientError
from common.platform.config import Settings
from common.platform.logging import get_logger
from common.platform.plugins import devkit
from common.platform.redact import register_secret

log = get_logger(__name__)

CONNECT_TIMEOUT_SECONDS = 10
STATEMENT_TIMEOUT_MS = 300_000  # no single statement of ours should take 5 minutes
LOCK_TIMEOUT_MS = 60_000
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0

# Where docker/Dockerfile puts Amazon RDS's CA bundle: the default root of trust in AWS Batch.
RDS_CA_BUNDLE = "/etc/worthy-batch/rds-global-bundle.pem"
VERIFYING_MODES = ("verify-ca", "verify-full")


class CountingCursor(psycopg2.extensions.cursor):
    """A cursor that counts the statements it sends (each one a round trip)."""

    def execute(self, query: Any, vars: Any = None) -> None:
        _count(self.connection)
        super().execute(query, vars)

    def executemany(self, query: Any, vars_list: Any) -> None:
        _count(self.connection)
        super().executemany(query, vars_list)

    def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> None:
        _count(self.connection)
        super().copy_expert(sql, file, size)


class CountingConnection(psycopg2.extensions.connection):
    """A connection that knows how many round trips it made (benchmarks and results files)."""

    round_trips = 0

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        if not args and "cursor_factory" not in kwargs:
            kwargs["cursor_factory"] = CountingCursor
        return super().cursor(*args, **kwargs)

    def commit(self) -> None:
        self.round_trips += 1
        super().commit()

    def rollback(self) -> None:
        self.round_trips += 1
        super().rollback()


def _count(conn: Any) -> None:
    if isinstance(conn, CountingConnection):
        conn.round_trips += 1


def round_trips(conn: psycopg2.extensions.connection) -> int:
    """Statements, COPYs, commits and rollbacks sent on `conn` so far."""
    return conn.round_trips if isinstance(conn, CountingConnection) else 0


def database_url(settings: Settings) -> str:
    """`DATABASE_URL` (a DSN, a URL or an RDS JSON secret), else the embedded server under
    `.local/` (never inside AWS Batch), with the TLS options of `tls_options`."""
    if settings.database_url is not None:
        dsn = settings.database_url.get_secret_value()
    elif settings.in_aws_batch:
        raise ConfigError({"DATABASE_URL": "missing (required inside AWS Batch)"})
    else:
        dsn = devkit("local_database", "DATABASE_URL (unset)")()
    password = psycopg2.extensions.parse_dsn(dsn).get("password")
    register_secret(password)
    options = tls_options(settings)
    if options:
        dsn = psycopg2.extensions.make_dsn(dsn, **options)
    return dsn


def tls_options(settings: Settings) -> dict[str, str]:
    """The sslmode and sslrootcert to impose on the DSN (empty: leave the DSN as it is).

    `DATABASE_SSLMODE` wins over an sslmode in the DSN; inside AWS Batch it defaults to
    verify-full against the RDS CA bundle baked into the image. Outside, the DSN decides
    (libpq's own default is `prefer`; the embedded server's DSN says `disable`).
    """
    mode = settings.database_sslmode or ("verify-full" if settings.in_aws_batch else None)
    if mode is None:
        return {}
    options: dict[str, str] = {"sslmode": mode}
    root = settings.database_sslrootcert or (RDS_CA_BUNDLE if settings.in_aws_batch else None)
    if mode in VERIFYING_MODES and root:
        if root != "system" and not Path(root).is_file():
            raise ConfigError({"DATABASE_SSLROOTCERT": f"{root}: no such file"})
        options["sslrootcert"] = root
    return options


def connect(
    dsn: str,
    *,
    attempts: int = 5,
    application_name: str = "worthy-batch",
    sleep: Callable[[float], None] = time.sleep,
) -> psycopg2.extensions.connection:
    """Connect, retrying `attempts` times with jittered exponential backoff.

    Raises `DatabaseUnavailable` (exit 75) when every attempt fails, and at once a
    `ConfigError` (exit 78) when retrying cannot help: TLS verification failed
    (`DatabaseTlsRefused`), a wrong password, a database or role that does not exist,
    a DSN that does not parse (common/adapters/error_map.py sorts them).
    """
    for attempt in range(1, attempts + 1):
        try:
            conn = psycopg2.connect(
                dsn,
                connection_factory=CountingConnection,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name=application_name,
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS} "
                f"-c lock_timeout={LOCK_TIMEOUT_MS}",
            )
            return conn
        except (psycopg2.OperationalError, psycopg2.ProgrammingError) as exc:
            reason = first_line(exc)
            error = translate(exc)
            if isinstance(error, ConfigError):
                raise error from None
            if not isinstance(error, TransientError):
                raise
            if attempt == attempts:
                raise DatabaseUnavailable(reason, attempts) from None
            delay = backoff_delay(attempt)
            log.warning(
                "database connection failed, retrying in %.1fs",
                delay,
                extra={"attempt": attempt, "error": reason},
            )
            sleep(delay)
    raise AssertionError("unreachable")


def backoff_delay(attempt: int) -> float:
    """Full-jitter exponential backoff for the `attempt`-th failure (1-based)."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def array_literal(values: Iterable[int | date]) -> str:
    """A PostgreSQL array literal of ints or dates, to bind as one text parameter.

    psycopg2 adapts a Python list element by element (~7 us each: ~0.7 s for a
    100,000-plan chunk); this literal is built in a few milliseconds. Ints and
    ISO dates need no quoting, which is why only they are accepted.
    """
    return (
        "{" + ",".join(v.isoformat() if isinstance(v, date) else str(int(v)) for v in values) + "}"
    )
