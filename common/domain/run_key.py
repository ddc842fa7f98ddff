"""A run's identity, and where its files are.

One run per market and day: `RunKey` is that pair, and the run id
(`<MIC>-<YYYYMMDD>`) is derived from it, never carried beside it. `RunLocation`
is the run's folder in the manifest bucket (docs/design.md section 7):

    s3://<bucket>/<prefix>/<MIC>/<YYYY-MM-DD>/<run_id>/run.json
                                                      chunks/00000.jsonl.gz
                                                      results/00000.json
                                                      report.json
                                                      redrives/00001.json
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from common.domain.errors import ManifestError


@dataclass(frozen=True, order=True)
class RunKey:
    """The market (its MIC) and the day of one run."""

    market: str
    run_date: date

    @property
    def run_id(self) -> str:
        """`<MIC>-<YYYYMMDD>`."""
        return f"{self.market}-{self.run_date:%Y%m%d}"

    @classmethod
    def parse(cls, run_id: str) -> RunKey:
        """The key of a run id; ValueError when it is not one."""
        market, _, day = run_id.partition("-")
        if not market or len(day) != 8 or not day.isdigit():
            raise ValueError(f"not a run id: {run_id!r} (expected <MIC>-<YYYYMMDD>)")
        return cls(market, datetime.strptime(day, "%Y%m%d").date())

    def __str__(self) -> str:
        return self.run_id


@dataclass(frozen=True)
class RunLocation:
    bucket: str
    prefix: str  # <prefix>/<MIC>/<YYYY-MM-DD>/<run_id>

    @property
    def manifest_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/run.json"

    @property
    def run_id(self) -> str:
        """The run these files are stored as: the last folder of the prefix."""
        return self.prefix.rsplit("/", 1)[-1]

    def chunk_key(self, index: int) -> str:
        return f"{self.prefix}/chunks/{index:05d}.jsonl.gz"

    def result_key(self, index: int) -> str:
        return f"{self.prefix}/results/{index:05d}.json"

    def redrive_key(self, redrive: int) -> str:
        return f"{self.prefix}/redrives/{redrive:05d}.json"

    @property
    def report_key(self) -> str:
        return f"{self.prefix}/report.json"

    @classmethod
    def for_run(cls, bucket: str, base_prefix: str, key: RunKey) -> RunLocation:
        parts = [p for p in (base_prefix, key.market, key.run_date.isoformat(), key.run_id) if p]
        return cls(bucket, "/".join(parts))

    @classmethod
    def from_manifest_uri(cls, uri: str) -> RunLocation:
        if not uri.startswith("s3://") or not uri.endswith("/run.json"):
            raise ManifestError(uri, "not an s3://bucket/.../run.json URI")
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise ManifestError(uri, "not an s3://bucket/.../run.json URI")
        return cls(bucket, key.removesuffix("/run.json"))
