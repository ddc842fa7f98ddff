"""The local runs' S3: moto's server on loopback, its objects kept on disk under `.local/s3/`.

moto keeps objects in memory, so they used to die with `local-run` while the database
under `.local/` kept the run: a rerun found the run but not its manifests. Here moto
serves as before, behind a thin WSGI layer that writes through to SQLite
(`.local/s3/objects.sqlite`): after every request that may change S3 (anything but
GET, HEAD, OPTIONS) moto answered with success, the layer brings the file up to date,
in one transaction, before the client sees the answer. So what a client was told is
written is on disk; a SIGINT or SIGKILL at any moment leaves the file as it was before
or after that transaction (SQLite's journal), never half of it. Starting again loads
every object back into a fresh moto before anyone gets the endpoint.

Only the outcome is stored (bucket, key, body, content type), not a log of requests:
nothing is replayed, reads cost nothing, and the file is as big as the objects.

One process serves a directory at a time (an exclusive lock on `.local/s3/lock`);
another that wants it while it is served uses the same server (its endpoint is in
`.local/s3/endpoint`), so `make local-ops ARGS=status` works beside a running
`local-run`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from common.domain.errors import TransientError

READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})
SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    etag TEXT NOT NULL,
    content_type TEXT,
    body BLOB NOT NULL,
    PRIMARY KEY (bucket, key)
);
"""
WAIT_FOR_SERVER_SECONDS = 15.0

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def s3_client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}),
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


class Objects:
    """The file: every bucket and object the server holds, as of its last change."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def buckets(self) -> list[str]:
        with self._lock:
            return [name for (name,) in self._db.execute("SELECT name FROM buckets ORDER BY 1")]

    def objects(self) -> Iterator[tuple[str, str, str | None, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT bucket, key, content_type, body FROM objects ORDER BY 1, 2"
            ).fetchall()
        yield from rows

    def sync(self, s3: Any) -> None:
        """Make the file hold what the server holds now (one transaction)."""
        with self._lock:
            names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
            listed: dict[tuple[str, str], str] = {}
            for name in names:
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                    for item in page.get("Contents", []):
                        listed[(name, item["Key"])] = item["ETag"]
            known = {
                (bucket, key): etag
                for bucket, key, etag in self._db.execute("SELECT bucket, key, etag FROM objects")
            }
            fetched = []
            for (bucket, key), etag in listed.items():
                if known.get((bucket, key)) == etag:
                    continue
                try:
                    got = s3.get_object(Bucket=bucket, Key=key)
                except ClientError:
                    continue  # deleted since it was listed: that delete syncs after us
                fetched.append(
                    (bucket, key, got["ETag"], got.get("ContentType"), got["Body"].read())
                )
            gone = [k for k in known if k not in listed]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM buckets")
                self._db.executemany("INSERT INTO buckets VALUES (?)", [(n,) for n in names])
                self._db.executemany(
                    "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)", fetched
                )
                self._db.executemany("DELETE FROM objects WHERE bucket = ? AND key = ?", gone)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


class WriteThrough:
    """WSGI: moto's answer to a changing request goes out only once the file holds it."""

    def __init__(self, app: WsgiApp, on_change: Callable[[], None]) -> None:
        self._app = app
        self._on_change = on_change
        self.enabled = False

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not self.enabled or environ.get("REQUEST_METHOD", "GET") in READ_ONLY:
            return self._app(environ, start_response)
        answered: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered[:] = [status, headers, exc_info]
            return lambda _data: None  # the legacy write(); moto never calls it

        result = self._app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers, exc_info = answered
        if status.startswith("2"):
            try:
                self._on_change()
            except Exception as exc:  # noqa: BLE001 - the client retries an InternalError
                message = f"saving to the local S3 store failed: {type(exc).__name__}: {exc}"
                error = (
                    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
                    f"<Message>{message}</Message></Error>"
                ).encode()
                start_response(
                    "500 Internal Server Error",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(error)))],
                )
                return [error]
        start_response(status, headers, exc_info)
        return [body]


class LocalS3:
    """`with LocalS3(directory) as s3:` serves `directory`'s objects on `s3.endpoint`.

    `owner` is False when another process already serves the directory: then its
    server is used, and left running."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.endpoint = ""
        self.owner = False
        self._lock_file: IO[str] | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._objects: Objects | None = None

    @property
    def _endpoint_file(self) -> Path:
        return self.directory / "endpoint"

    def __enter__(self) -> Self:
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = open(self.directory / "lock", "a+")  # noqa: SIM115 (held until __exit__)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            self.endpoint = self._running_endpoint()
            return self
        self._lock_file = lock
        self.owner = True
        try:
            self._endpoint_file.unlink(missing_ok=True)  # a crashed owner's
            self._serve()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _serve(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._objects = Objects(self.directory / "objects.sqlite")
        layer = WriteThrough(
            DomainDispatcherApplication(create_backend_app),
            self._save,
        )
        self._server = make_server(
            "127.0.0.1", 0, layer, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-s3", daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"
        self._client = s3_client(self.endpoint)
        self._restore()
        layer.enabled = True
        self._objects.sync(self._client)  # an object restored under another ETag
        tmp = self._endpoint_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "url": self.endpoint}))
        tmp.replace(self._endpoint_file)

    def _save(self) -> None:
        objects = self._objects
        if objects is None:  # closing: the client must not be told its write is kept
            raise RuntimeError("the local S3 store is closing")
        objects.sync(self._client)

    def _restore(self) -> None:
        assert self._objects is not None
        for name in self._objects.buckets():
            self._client.create_bucket(Bucket=name)
        for bucket, key, content_type, body in self._objects.objects():
            extra = {"ContentType": content_type} if content_type else {}
            self._client.put_object(Bucket=bucket, Key=key, Body=body, **extra)

    def _running_endpoint(self) -> str:
        """The endpoint of the process that serves the directory (it may be starting)."""
        deadline = time.monotonic() + WAIT_FOR_SERVER_SECONDS
        while time.monotonic() < deadline:
            try:
                found = json.loads(self._endpoint_file.read_text())
                os.kill(int(found["pid"]), 0)
            except (FileNotFoundError, ValueError, KeyError, ProcessLookupError):
                time.sleep(0.1)
                continue
            return str(found["url"])
        raise TransientError(
            f"the local S3 store {self.directory} is locked by another process that does not "
            "serve it; try again when it has ended"
        )

    def create_bucket(self, name: str) -> None:
        client = s3_client(self.endpoint)
        try:
            client.create_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise

    def empty(self) -> None:
        """Delete every object of every bucket (the deletions are kept like any change)."""
        client = s3_client(self.endpoint)
        for bucket in client.list_buckets().get("Buckets", []):
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"])
            for page in pages:
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=bucket["Name"], Delete={"Objects": keys})

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._objects is not None:
            self._objects.close()
            self._objects = None
        if self._lock_file is not None:
            self._endpoint_file.unlink(missing_ok=True)
            self._lock_file.close()  # releases the lock
            self._lock_file = None


def in_use(directory: Path) -> bool:
    """Whether a process serves `directory` now."""
    if not directory.exists():
        return False
    with open(directory / "lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False
