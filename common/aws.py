"""boto3 clients with explicit timeouts and retries, built once per process.

`AWS_ENDPOINT_URL` (boto3's own variable) points every client at moto in
local runs and tests; nothing here reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30
MAX_ATTEMPTS = 5

BOTO_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
    retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
    max_pool_connections=16,  # manifest uploads run in a small thread pool
)


def _client(service: str, config: Config | None = None) -> Any:
    return boto3.session.Session().client(service, config=config or BOTO_CONFIG)  # type: ignore[call-overload]


def s3_client(config: Config | None = None) -> S3Client:
    client: S3Client = _client("s3", config)
    return client


def batch_client(config: Config | None = None) -> BatchClient:
    client: BatchClient = _client("batch", config)
    return client


def logs_client(config: Config | None = None) -> CloudWatchLogsClient:
    client: CloudWatchLogsClient = _client("logs", config)
    return client
