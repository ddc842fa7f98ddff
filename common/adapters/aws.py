"""AWS clients with explicit timeouts and retries, built once per process.

The composition root (entry/bootstrap.py) holds one `AwsClients`, which builds
each client on first use and hands the same one out after; the module functions
below build a new client at each call (tests and tools).

Built by botocore directly: boto3's session adds nothing the stages use (its
resource layer and s3transfer's upload managers) and costs every executor
child ~0.15 s of imports. `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`,
read by botocore itself) point the clients at moto or the Batch emulator in
local runs and tests; nothing here reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import botocore.session
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
    return botocore.session.get_session().create_client(service, config=config or BOTO_CONFIG)


class AwsClients:
    """One botocore session and one client per (service, config) for a process."""

    def __init__(self) -> None:
        self._session: botocore.session.Session | None = None
        self._clients: dict[tuple[str, int], Any] = {}

    def _client(self, service: str, config: Config | None) -> Any:
        chosen = config or BOTO_CONFIG
        key = (service, id(chosen))  # Config is not hashable; the configs are constants
        if key not in self._clients:
            if self._session is None:
                self._session = botocore.session.get_session()
            self._clients[key] = self._session.create_client(service, config=chosen)
        return self._clients[key]

    def s3(self, config: Config | None = None) -> S3Client:
        client: S3Client = self._client("s3", config)
        return client

    def batch(self, config: Config | None = None) -> BatchClient:
        client: BatchClient = self._client("batch", config)
        return client

    def logs(self, config: Config | None = None) -> CloudWatchLogsClient:
        client: CloudWatchLogsClient = self._client("logs", config)
        return client


def s3_client(config: Config | None = None) -> S3Client:
    client: S3Client = _client("s3", config)
    return client


def batch_client(config: Config | None = None) -> BatchClient:
    client: BatchClient = _client("batch", config)
    return client
