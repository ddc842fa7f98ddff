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

from common import embedded_pg
from common.stubs.market_server import StubMarketServer
from tests.servers import MotoServer, fresh_database

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
    dsn = fresh_database(_server_dsn(), f"worthy_test_{worker_id}")
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
    stub = StubMarketServer(as_of=RUN_DAY_CLOSE, unknown_symbols={"NOSUCH"})
    stub.start()
    env = {
        **stub.environment(),
        # Keep retries quick in tests: small read timeout, providers' limits off.
        "HTTP_READ_TIMEOUT": "1.5",  # under the stub's 2 s "slow" fault; loaded CI needs slack
        "PROVIDER_BACKOFF_SECONDS": "0.01",
        "FINNHUB_CALLS_PER_MINUTE": "100000",
        "ALPHA_VANTAGE_CALLS_PER_MINUTE": "100000",
        "EXCHANGE_RATE_CALLS_PER_MINUTE": "100000",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield stub
    stub.stop()
