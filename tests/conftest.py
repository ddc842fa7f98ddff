"""Shared fixtures: a real PostgreSQL for every test that asks for one.

When `DATABASE_URL` is set the tests use that server (the role needs
CREATEDB); otherwise the embedded pgserver under `.local/`. Each test
session (each xdist worker) gets its own freshly migrated database, and the
`db` fixture empties every table before the test: a clean schema in
milliseconds instead of a new database per test.

Secrets are sentinels: the stub providers' API keys, and the database
password (the embedded server trusts local connections, so a DSN carrying
`password=SENTINEL-...` still connects). The e2e `cli` runner checks every
output for them, so any test that drives the CLI is also a leak test.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import psycopg2
import psycopg2.extensions
import pytest
import requests
from hypothesis import HealthCheck, settings

from common.platform.logging import LOGGER_NAME, _metrics_state
from devkit import embedded_pg
from devkit.batch.local import LocalBatch
from devkit.stubs.market_server import StubMarketServer
from tests.servers import MotoServer, fresh_database

ROOT = Path(__file__).resolve().parents[1]

SENTINEL_DATABASE_PASSWORD = "SENTINEL-database-password-5d1e7b"
SENTINEL_KEYS = {
    "FINNHUB_API_KEY": "SENTINEL-finnhub-key-c0ffee11",
    "ALPHA_VANTAGE_API_KEY": "SENTINEL-alphavantage-key-beef2222",
    "EXCHANGE_RATE_API_KEY": "SENTINEL-exchangerate-key-f00d3333",
}
SENTINELS = (SENTINEL_DATABASE_PASSWORD, *SENTINEL_KEYS.values())


def leaked_sentinels(*texts: str | bytes | None) -> list[str]:
    """The sentinel secrets that appear in any of `texts` (none, if all is well)."""
    found = []
    for text in texts:
        if not text:
            continue
        blob = text if isinstance(text, str) else text.decode("utf-8", "replace")
        found += [s for s in SENTINELS if s in blob]
    return sorted(set(found))


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """Whatever a test does to logging (`entry.cli.main` points it at the stdout of the
    moment, which may be a capsys stream closed once the test ends), the next test
    starts with the configuration this one found."""
    root = logging.getLogger(LOGGER_NAME)
    handlers, level, propagate = root.handlers[:], root.level, root.propagate
    metrics = dict(_metrics_state)
    yield
    root.handlers[:], root.level, root.propagate = handlers, level, propagate
    _metrics_state.update(metrics)


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
    dsn = fresh_database(server, f"worthy_test_{worker_id}")
    if not psycopg2.extensions.parse_dsn(server).get("password"):
        # A server that asks for no password (the embedded one trusts local
        # connections) ignores this one: every process gets a sentinel to leak.
        dsn = psycopg2.extensions.make_dsn(dsn, password=SENTINEL_DATABASE_PASSWORD)
    yield dsn


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
    "provider_limits",
    "provider_daily_calls",
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


# -- AWS: a real moto server over HTTP on loopback ------------------------------------

BUCKET = "worthy-test-runs"
BATCH_QUEUE = "worthy-test-queue"
EXECUTOR_DEFINITION = "worthy-test-executor"
FINALIZER_DEFINITION = "worthy-test-finalizer"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = MotoServer()
    yield server.endpoint
    server.stop()


@dataclass
class AwsStack:
    endpoint: str
    bucket: str
    queue: str
    executor_definition: str
    finalizer_definition: str

    @property
    def env(self) -> dict[str, str]:
        """What a child process needs to reach this stack."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MANIFEST_BUCKET": self.bucket,
        }

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def s3(self) -> Any:
        return self.client("s3")

    def batch(self) -> Any:
        return self.client("batch")

    def object_keys(self) -> list[str]:
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def objects(self) -> dict[str, bytes]:
        s3 = self.s3()
        return {
            k: s3.get_object(Bucket=self.bucket, Key=k)["Body"].read() for k in self.object_keys()
        }


def provision(endpoint: str) -> AwsStack:
    """An empty moto account at `endpoint` with the runs bucket and a Batch queue."""
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    requests.post(f"{endpoint}/moto-api/config", json={"batch": {"use_docker": False}}, timeout=10)
    stack = AwsStack(endpoint, BUCKET, BATCH_QUEUE, EXECUTOR_DEFINITION, FINALIZER_DEFINITION)
    stack.s3().create_bucket(Bucket=BUCKET)
    batch = stack.batch()
    iam = stack.client("iam")
    role = iam.create_role(RoleName="batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    env = batch.create_compute_environment(
        computeEnvironmentName="worthy-test", type="UNMANAGED", serviceRole=role
    )
    batch.create_job_queue(
        jobQueueName=BATCH_QUEUE,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
    )
    for name, command in (
        (EXECUTOR_DEFINITION, ["execute"]),
        (FINALIZER_DEFINITION, ["finalize", "--run-id", "Ref::run_id"]),
    ):
        batch.register_job_definition(
            jobDefinitionName=name,
            type="container",
            containerProperties={
                "image": "worthy-batch:test",
                "vcpus": 1,
                "memory": 512,
                "command": command,
            },
        )
    return stack


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> AwsStack:
    """An empty moto account with the runs bucket and a Batch queue, reached over HTTP;
    the environment (inherited by child processes) points boto3 at it."""
    stack = provision(moto_endpoint)
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    return stack


# -- market data: the stub providers on loopback ----------------------------------------

RUN_DAY_CLOSE = datetime(2026, 11, 27, 16, 0, tzinfo=ZoneInfo("America/New_York"))


@pytest.fixture
def market(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubMarketServer]:
    """The stub providers, quoting as of the 2026-11-27 close; child processes inherit the env."""
    stub = StubMarketServer(
        as_of=RUN_DAY_CLOSE,
        unknown_symbols={"NOSUCH"},
        finnhub_key=SENTINEL_KEYS["FINNHUB_API_KEY"],
        alpha_vantage_key=SENTINEL_KEYS["ALPHA_VANTAGE_API_KEY"],
        exchange_rate_key=SENTINEL_KEYS["EXCHANGE_RATE_API_KEY"],
    )
    stub.start()
    env = {
        **stub.environment(),
        # Keep retries quick in tests: small read timeout, providers' limits and budgets off.
        "HTTP_READ_TIMEOUT": "1.5",  # under the stub's 2 s "slow" fault; loaded CI needs slack
        "PROVIDER_BACKOFF_SECONDS": "0.01",
        "FINNHUB_CALLS_PER_MINUTE": "100000",
        "ALPHA_VANTAGE_CALLS_PER_MINUTE": "100000",
        "EXCHANGE_RATE_CALLS_PER_MINUTE": "100000",
        "FINNHUB_CALLS_PER_DAY": "unlimited",
        "ALPHA_VANTAGE_CALLS_PER_DAY": "unlimited",
        "EXCHANGE_RATE_CALLS_PER_DAY": "unlimited",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield stub
    stub.stop()


# -- AWS Batch: the dev kit's emulator (AWS's documented rules), not moto's --------------


@pytest.fixture
def idle_batch(tmp_path: Path) -> Iterator[LocalBatch]:
    """The stack's job definitions on the Batch emulator, with no compute capacity: every
    job submitted stays SUBMITTED, as in a queue whose environment has not scaled yet.
    For tests of what gets submitted; `environment()` points a child process at it."""
    with LocalBatch(log_dir=tmp_path, slots=1, base_env={}, with_rules=False, compute=False) as b:
        yield b
