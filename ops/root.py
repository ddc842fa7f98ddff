"""What the operator commands ask the composition root (entry/bootstrap.py) for."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from psycopg2.extensions import connection

from common.adapters.manifest_store import ManifestStore
from common.adapters.submitters import JobSubmitter
from common.platform.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client


class OpsRoot(Protocol):
    def settings(self, required: Iterable[str] = ()) -> Settings: ...

    def connect(self, application_name: str = ...) -> connection: ...

    def connector(self, application_name: str = ...) -> Callable[[], connection]: ...

    def manifest_store(self) -> ManifestStore: ...

    def submitter(self, kind: str) -> JobSubmitter: ...

    def s3(self) -> S3Client: ...

    def batch(self) -> BatchClient: ...

    def logs(self) -> CloudWatchLogsClient: ...
