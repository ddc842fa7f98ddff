"""The composition root: everything a command is built from, made once per process.

A command's handler gets one `Root` and asks it for what it needs: the settings
(parsed from the environment once), database connections, the AWS clients, the
manifest store, the submitter and the market data. Each is built on first use
and the same one is handed out after (cosmicpython's bootstrap.py). The AWS and
database libraries are imported with this module, so the CLI loads them with the
collector off and freezes them (entry/cli.py, `_load`); the submitters and the
market data, which one stage each needs, are imported when asked for.

The stages never import this module: each types the root by a Protocol of what
it asks for (planner/entrypoint.py `PlannerRoot`, executor/entrypoint.py
`ExecutorRoot`, finalizer/entrypoint.py `FinalizerRoot`, ops/root.py `OpsRoot`),
which `Root` satisfies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from psycopg2.extensions import connection

from common.adapters.aws import AwsClients
from common.adapters.db import connect, database_url
from common.adapters.manifest_store import ManifestStore
from common.platform.config import Settings, load_settings, require

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client

    from common.adapters.marketdata.bootstrap import MarketData
    from common.adapters.submitters import JobSubmitter

APPLICATION_NAME = "worthy-batch"  # pg_stat_activity's name for a connection of no stage
QUOTAS_APPLICATION_NAME = "worthy-executor-quotas"


class Root:
    """What one command is built from; one per process (and per `entry.cli.main` call)."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._dsn: str | None = None
        self._aws = AwsClients()  # builds nothing until a client is asked for
        self._store: ManifestStore | None = None

    def settings(self, required: Iterable[str] = ()) -> Settings:
        """The settings, parsed once; a `ConfigError` naming each bad variable and each of
        `required` that is unset."""
        if self._settings is None:
            self._settings = load_settings(required)
            return self._settings
        return require(self._settings, required)

    def dsn(self) -> str:
        """The database's DSN (DATABASE_URL, else the dev kit's embedded server)."""
        if self._dsn is None:
            self._dsn = database_url(self.settings())
        return self._dsn

    def connector(self, application_name: str = APPLICATION_NAME) -> Callable[[], connection]:
        """A function that opens a new connection, retried as DB_CONNECT_ATTEMPTS says."""
        dsn, attempts = self.dsn(), self.settings().db_connect_attempts

        def opened() -> connection:
            return connect(dsn, attempts=attempts, application_name=application_name)

        return opened

    def connect(self, application_name: str = APPLICATION_NAME) -> connection:
        return self.connector(application_name)()

    def s3(self) -> S3Client:
        return self._aws.s3()

    def batch(self) -> BatchClient:
        return self._aws.batch()

    def logs(self) -> CloudWatchLogsClient:
        return self._aws.logs()

    def manifest_store(self) -> ManifestStore:
        if self._store is None:
            self._store = ManifestStore(self.s3())
        return self._store

    def submitter(self, kind: str) -> JobSubmitter:
        """The `kind` of submitter (batch, local, none), built with this root's settings."""
        from common.adapters.submitters.factory import build_submitter

        batch = self.batch() if kind == "batch" else None
        return build_submitter(kind, self.settings(), self.dsn(), batch)

    def market_data(self) -> MarketData:
        """The price chain, its quotas kept on a connection of their own, opened when the
        first call needs a slot (a rerun with every price stored never opens it)."""
        from common.adapters.marketdata.bootstrap import build_market_data
        from common.adapters.store.quotas import PostgresQuotas

        return build_market_data(
            self.settings(), PostgresQuotas(lambda: self.connect(QUOTAS_APPLICATION_NAME))
        )
