"""`worthy-batch execute`: ask the composition root for settings and clients, run one
chunk, report."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Protocol

from psycopg2.extensions import connection

from common.adapters.jobclock import job_usage
from common.adapters.manifest_store import ManifestStore
from common.adapters.marketdata.providers import provider_keys
from common.adapters.store.runs import RunRepository
from common.adapters.store.unit_of_work import PostgresStores
from common.domain.errors import (
    ChunkOutOfRange,
    ConfigError,
    ManifestError,
    ProvidersUnavailable,
    WorthyError,
)
from common.domain.run_key import RunKey, RunLocation
from common.platform.config import Settings
from common.platform.logging import get_logger
from executor.context import MarketDataOnDemand
from executor.service import ExecutorDeps, execute_chunk

if TYPE_CHECKING:
    from common.adapters.marketdata.bootstrap import MarketData

log = get_logger(__name__)


class ExecutorRoot(Protocol):
    """What `execute` asks the composition root (entry/bootstrap.py) for."""

    def settings(self, required: Iterable[str] = ()) -> Settings: ...

    def connector(self, application_name: str = ...) -> Callable[[], connection]: ...

    def manifest_store(self) -> ManifestStore: ...

    def market_data(self) -> MarketData: ...


def chunk_index(
    args: argparse.Namespace, settings: Settings, store: ManifestStore, where: RunLocation
) -> int:
    """--chunk-index, else CHUNK_INDEX, else AWS_BATCH_JOB_ARRAY_INDEX (through the redrive's
    chunk list when REDRIVE is set), else 0."""
    for candidate in (args.chunk_index, settings.chunk_index):
        if candidate is not None:
            if candidate < 0:
                raise ConfigError({"--chunk-index": "must be 0 or more"})
            return int(candidate)
    child = settings.aws_batch_job_array_index
    if child is None:
        return 0
    if settings.redrive is None:
        return child
    listed = store.load_redrive(where, settings.redrive)
    if listed is None:
        raise ManifestError(where.manifest_uri, f"redrive {settings.redrive} has no chunk list")
    if child >= len(listed.chunks):
        raise ManifestError(
            where.manifest_uri,
            f"array child {child} is past redrive {settings.redrive}'s "
            f"{len(listed.chunks)} chunk(s)",
        )
    return listed.chunks[child]


def locate(
    args: argparse.Namespace, settings: Settings, open_db: Callable[[], connection]
) -> RunLocation:
    """Where the run's files are: --manifest, MANIFEST_URI, or the run's record (--run-id)."""
    uri = args.manifest or (None if args.run_id else settings.manifest_uri)
    if uri:
        return RunLocation.from_manifest_uri(uri)
    if not args.run_id:
        raise ConfigError({"--manifest/--run-id": "one is required (or MANIFEST_URI)"})
    conn = open_db()
    try:
        record = RunRepository(conn).require(args.run_id)  # unknown: 78, naming the known
    finally:
        conn.close()
    if record.manifest_uri:
        return RunLocation.from_manifest_uri(record.manifest_uri)
    if not settings.manifest_bucket:
        raise ConfigError({"MANIFEST_BUCKET": f"missing, and run {args.run_id} is not recorded"})
    key = RunKey.parse(args.run_id)
    return RunLocation.for_run(settings.manifest_bucket, settings.manifest_prefix, key)


def _chunk_count(store: ManifestStore, where: RunLocation) -> int | None:
    try:
        return store.load_manifest(where).chunk_count
    except WorthyError:
        return None


def run(args: argparse.Namespace, root: ExecutorRoot) -> int:
    settings = root.settings()
    # The keys are checked (no price key: 78) and registered with `redact` now; the
    # clients are built when the first price must be fetched.
    keys = provider_keys(settings)
    market_data = MarketDataOnDemand(root.market_data)
    try:
        where = locate(args, settings, root.connector())
        store = root.manifest_store()
        index = chunk_index(args, settings, store, where)
        if args.chunk_index is not None:
            # An operator's --chunk-index is an argument: out of range is 78, naming the
            # run's chunks (an index from Batch past run.json stays a manifest mismatch, 65).
            # A manifest that cannot be read is execute_chunk's to report: it reads it
            # again, records why on the chunk's row (`status` shows it) and raises.
            count = _chunk_count(store, where)
            if count is not None and index >= count:
                raise ChunkOutOfRange(where.run_id, index, count)
        deps = ExecutorDeps(
            stores=PostgresStores(root.connector(f"worthy-executor-{index}")),
            files=store,
            market_data=market_data,
            clock=partial(datetime.now, UTC),
            write_batch_size=settings.write_batch_size,
            write_connections=settings.write_connections,
            price_fetch_threads=settings.price_fetch_threads,
            quote_wait_seconds=settings.executor_timeout_seconds,
            share_decimals=settings.share_decimals,
            missing_keys=keys.missing,
            usage=partial(job_usage, settings),
        )
        try:
            execute_chunk(deps, where, index)
        except ProvidersUnavailable as exc:
            if not settings.last_attempt:
                raise  # exit 75: Batch tries the chunk again
            # Batch will not retry; the chunk is recorded `failed` with its plans' reasons,
            # and exiting 0 lets the array succeed, so the finalizer reports the run.
            log.warning(
                "last attempt (%s of %s) and %s; chunk %d stays failed for the report "
                "and for `worthy-batch redrive`",
                settings.aws_batch_job_attempt,
                settings.job_attempts,
                exc,
                index,
            )
    finally:
        market_data.close()
    return 0
