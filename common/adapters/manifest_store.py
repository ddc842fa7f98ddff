"""Run files in S3 (docs/design.md section 7): chunks, run.json, results, report, in the
run's folder (`RunLocation`, common/domain/run_key.py).

Chunks are gzipped JSON Lines; their sha256 (of the stored bytes) is listed in
run.json, so a reader detects any corruption, truncation or substitution
before it buys anything. Transient storage failures become `StorageUnavailable`
(exit 75); a bucket that does not exist, a bad bucket name or access denied
become a `ConfigError` (78, common/adapters/error_map.py); files that fail verification
become `ManifestError` (exit 65).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from common.adapters.error_map import translate
from common.domain.errors import ManifestError, StorageUnavailable, TransientError, WorthyError
from common.domain.models import ChunkRef, ChunkResult, PlanSnapshot, RedriveList, RunManifest
from common.domain.run_key import RunLocation

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_CHUNK_BYTES = 256 * 1024 * 1024  # decompressed; a chunk of 10,000 plans is ~3 MB
MAX_LINE_BYTES = 64 * 1024
_MISSING = ("NoSuchKey", "404", "NotFound")


def encode_chunk(lines: list[bytes]) -> bytes:
    """Gzip JSON lines deterministically (mtime 0), so equal content gives equal bytes."""
    return gzip.compress(b"".join(lines), compresslevel=1, mtime=0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ManifestStore:
    """Reads and writes one bucket's run files."""

    def __init__(self, s3: S3Client) -> None:
        self._s3 = s3

    # -- writing -------------------------------------------------------------------------

    def put_chunk(
        self, where: RunLocation, index: int, data: bytes, items: int, symbols: int
    ) -> ChunkRef:
        key = where.chunk_key(index)
        self._put(where.bucket, key, data, "application/gzip")
        return ChunkRef(index=index, key=key, items=items, symbols=symbols, sha256=sha256(data))

    def put_manifest(self, where: RunLocation, manifest: RunManifest) -> None:
        body = manifest.model_dump_json(indent=1).encode()
        self._put(where.bucket, f"{where.prefix}/run.json", body, "application/json")

    def put_result(self, where: RunLocation, result: ChunkResult) -> None:
        body = result.model_dump_json(indent=1).encode()
        self._put(where.bucket, where.result_key(result.chunk_index), body, "application/json")

    def put_report(self, where: RunLocation, report: dict[str, Any]) -> None:
        body = json.dumps(report, indent=1, default=str).encode()
        self._put(where.bucket, where.report_key, body, "application/json")

    def put_redrive(self, where: RunLocation, chunks: RedriveList) -> None:
        body = chunks.model_dump_json(indent=1).encode()
        self._put(where.bucket, where.redrive_key(chunks.redrive), body, "application/json")

    def _put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error(exc, f"writing s3://{bucket}/{key}") from None

    # -- reading -------------------------------------------------------------------------

    def load_manifest(self, where: RunLocation) -> RunManifest:
        uri = where.manifest_uri
        data = self._get(where.bucket, f"{where.prefix}/run.json", uri)
        try:
            manifest = RunManifest.model_validate_json(data)
        except ValidationError as exc:
            raise ManifestError(uri, _first_error(exc)) from None
        if manifest.run_id != where.run_id:
            # A run.json copied or relabelled from another run would buy its plans
            # under that run's id and dates.
            raise ManifestError(
                uri, f"says run {manifest.run_id!r} but is stored as run {where.run_id!r}"
            )
        return manifest

    def load_chunk(
        self, where: RunLocation, manifest: RunManifest, index: int
    ) -> list[PlanSnapshot]:
        """Chunk `index`, verified against run.json, as validated snapshots."""
        uri = f"s3://{where.bucket}/{where.prefix}"
        if not 0 <= index < manifest.chunk_count:
            raise ManifestError(
                where.manifest_uri,
                f"chunk index {index} out of range (the run has {manifest.chunk_count} chunk(s))",
            )
        ref = manifest.chunks[index]
        if ref.key != where.chunk_key(index):
            raise ManifestError(
                where.manifest_uri, f"chunk {index} key {ref.key!r} is not this run's"
            )
        uri = f"s3://{where.bucket}/{ref.key}"
        data = self._get(where.bucket, ref.key, uri)
        if sha256(data) != ref.sha256:
            raise ManifestError(uri, "sha256 does not match run.json (corrupt or replaced)")
        plans = list(_parse_lines(uri, _gunzip(uri, data)))
        if len(plans) != ref.items:
            raise ManifestError(uri, f"holds {len(plans)} plan(s), run.json says {ref.items}")
        if len({p.plan_id for p in plans}) != len(plans):
            raise ManifestError(uri, "a plan appears twice")
        return plans

    def load_redrive(self, where: RunLocation, redrive: int) -> RedriveList | None:
        """Redrive number `redrive`'s chunk list, or None when it was never written."""
        key = where.redrive_key(redrive)
        uri = f"s3://{where.bucket}/{key}"
        try:
            data = self._get(where.bucket, key, uri)
        except ManifestError:
            return None
        try:
            chunks = RedriveList.model_validate_json(data)
        except ValidationError as exc:
            raise ManifestError(uri, _first_error(exc)) from None
        if chunks.run_id != where.run_id or chunks.redrive != redrive:
            raise ManifestError(uri, f"is not redrive {redrive} of run {where.run_id}")
        return chunks

    def load_results(self, where: RunLocation, chunk_count: int) -> dict[int, ChunkResult]:
        """Every results/N.json that exists and parses, by chunk index."""
        found: dict[int, ChunkResult] = {}
        for index in range(chunk_count):
            key = where.result_key(index)
            try:
                data = self._get(where.bucket, key, f"s3://{where.bucket}/{key}")
            except ManifestError:
                continue  # not written yet: the chunk has not finished
            try:
                found[index] = ChunkResult.model_validate_json(data)
            except ValidationError:
                continue
        return found

    def _get(self, bucket: str, key: str, uri: str) -> bytes:
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key)
            body: bytes = response["Body"].read()
        except ClientError as exc:
            # Narrow on purpose: a file not written (yet) is the run's fault, not S3's.
            if _code(exc) in _MISSING:
                raise ManifestError(uri, "not found") from None
            raise _storage_error(exc, f"reading {uri}") from None
        except BotoCoreError as exc:
            raise _storage_error(exc, f"reading {uri}") from None
        return body


def _storage_error(exc: BotoCoreError | ClientError, doing: str) -> WorthyError:
    """What an S3 failure means (common/adapters/error_map.py): a missing or misnamed bucket or
    access denied is configuration (78); anything transient is `StorageUnavailable` (75)."""
    error = translate(exc, doing)
    if isinstance(error, TransientError):
        return StorageUnavailable(f"{doing}: {_why(exc)}")
    return error


def _gunzip(uri: str, data: bytes) -> bytes:
    try:
        decompressor = zlib.decompressobj(wbits=31)
        text = decompressor.decompress(data, MAX_CHUNK_BYTES)
        if decompressor.unconsumed_tail:
            raise ManifestError(uri, f"decompresses to more than {MAX_CHUNK_BYTES} bytes")
        if not decompressor.eof or decompressor.unused_data:
            raise ManifestError(uri, "truncated or trailing data after the gzip stream")
    except zlib.error as exc:
        raise ManifestError(uri, f"not valid gzip: {exc}") from None
    return text


def _parse_lines(uri: str, text: bytes) -> Iterator[PlanSnapshot]:
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE_BYTES:
            raise ManifestError(uri, f"line {number} is longer than {MAX_LINE_BYTES} bytes")
        if not line.strip():
            raise ManifestError(uri, f"line {number} is empty")
        try:
            yield PlanSnapshot.model_validate_json(line)
        except ValidationError as exc:
            raise ManifestError(uri, f"line {number}: {_first_error(exc)}") from None


# Short forms of pydantic-core messages that would list every allowed value.
_SHORT_MESSAGES = {
    "literal_error": "not a supported value",
    "string_pattern_mismatch": "malformed",
}


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "document"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    message = _SHORT_MESSAGES.get(first["type"], first["msg"])
    return f"{where}: {message}{more}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _why(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return f"{_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}".strip(": ")
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")
