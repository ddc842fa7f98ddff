"""The local runs' S3 (devkit/local_s3.py): what a client was told is written survives the
server's process, whatever ends it, and a second user of the directory shares the server.

moto's objects live in its process's memory, so every server here runs in a process
of its own, as under `local-run`, and is ended the way a run's can be (exit, SIGKILL).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devkit.local_s3 import in_use

SERVE = """
import json, sys
from pathlib import Path
from devkit.local_s3 import LocalS3
with LocalS3(Path(sys.argv[1])) as s3:
    print(json.dumps({"url": s3.endpoint, "owner": s3.owner}), flush=True)
    sys.stdin.read()  # serve until the test closes stdin (or kills this process)
"""


@contextmanager
def served(directory: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    with subprocess.Popen(
        [sys.executable, "-c", SERVE, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        assert server.stdin is not None and server.stdout is not None
        try:
            yield server, json.loads(server.stdout.readline())
        finally:
            if server.poll() is None:
                server.stdin.close()
                server.wait(timeout=30)


def client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def contents(endpoint: str, bucket: str) -> dict[str, tuple[bytes, str]]:
    s3 = client(endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    found = {}
    for key in keys:
        got = s3.get_object(Bucket=bucket, Key=key)
        found[key] = (got["Body"].read(), got["ContentType"])
    return found


ODD_KEY = "runs/2026/a b+c%/../..//é.json"


def test_objects_outlive_the_server_and_deletions_stay_deleted(tmp_path: Path) -> None:
    with served(tmp_path) as (_, first):
        s3 = client(first["url"])
        s3.create_bucket(Bucket="runs")
        s3.put_object(Bucket="runs", Key="a/run.json", Body=b"{}", ContentType="application/json")
        s3.put_object(Bucket="runs", Key=ODD_KEY, Body=b"\x00\x01", ContentType="x/y")
        s3.put_object(Bucket="runs", Key="gone", Body=b"soon deleted")
        s3.put_object(Bucket="runs", Key="a/run.json", Body=b'{"v": 2}')  # overwritten
        s3.delete_object(Bucket="runs", Key="gone")

    with served(tmp_path) as (_, second):
        assert second["owner"] is True
        assert second["url"] != first["url"]
        assert contents(second["url"], "runs") == {
            "a/run.json": (b'{"v": 2}', "binary/octet-stream"),
            ODD_KEY: (b"\x00\x01", "x/y"),
        }


def test_a_write_acknowledged_before_a_sigkill_is_there_after_it(tmp_path: Path) -> None:
    with served(tmp_path) as (server, first):
        s3 = client(first["url"])
        s3.create_bucket(Bucket="runs")
        s3.put_object(Bucket="runs", Key="results/00000.json", Body=b"done")
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    assert not in_use(tmp_path)  # the kernel released the dead server's lock

    with served(tmp_path) as (_, second):
        assert contents(second["url"], "runs") == {
            "results/00000.json": (b"done", "binary/octet-stream")
        }


def test_a_second_user_shares_the_running_server_and_the_owner_keeps_its_writes(
    tmp_path: Path,
) -> None:
    with served(tmp_path) as (_, owner):
        assert in_use(tmp_path)
        with served(tmp_path) as (_, guest):
            assert guest == {"url": owner["url"], "owner": False}
            s3 = client(guest["url"])
            s3.create_bucket(Bucket="runs")
            s3.put_object(Bucket="runs", Key="k", Body=b"v")
        # the guest ended; the owner still serves, and still keeps what it is told
        assert contents(owner["url"], "runs") == {"k": (b"v", "binary/octet-stream")}
    assert not in_use(tmp_path)
    with served(tmp_path) as (_, again):
        assert contents(again["url"], "runs") == {"k": (b"v", "binary/octet-stream")}


def test_a_failed_request_changes_nothing_on_disk(tmp_path: Path) -> None:
    with served(tmp_path) as (_, first):
        s3 = client(first["url"])
        s3.create_bucket(Bucket="runs")
        with pytest.raises(ClientError):
            s3.put_object(Bucket="nosuchbucket", Key="k", Body=b"v")
    with served(tmp_path) as (_, second):
        assert [b["Name"] for b in client(second["url"]).list_buckets()["Buckets"]] == ["runs"]
        assert contents(second["url"], "runs") == {}


def test_a_kill_in_the_middle_of_writes_keeps_each_object_whole_and_no_acknowledged_one_lost(
    tmp_path: Path,
) -> None:
    acknowledged: dict[str, bytes] = {}
    in_flight: dict[str, bytes] = {}  # sent when the kill came: either outcome is right
    for round_, kill_after in enumerate((0.3, 0.7, 1.1)):
        with served(tmp_path) as (server, started):
            s3 = client(started["url"])
            s3.create_bucket(Bucket="runs")
            kept = {k: v for k, (v, _) in contents(started["url"], "runs").items()}
            assert acknowledged.keys() <= kept.keys() <= acknowledged.keys() | in_flight.keys()
            for key, body in kept.items():
                assert body in (acknowledged.get(key), in_flight.get(key)), key
            acknowledged.update(kept)
            in_flight.clear()
            once = boto3.client(
                "s3",
                endpoint_url=started["url"],
                region_name="us-east-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",
                config=Config(retries={"max_attempts": 1}),
            )

            def write(round_: int = round_, s3: Any = once) -> None:
                for n in range(100_000):
                    key, body = f"r{round_}/{n % 7}", f"{round_}:{n}".encode() * 100
                    in_flight[key] = body
                    try:
                        s3.put_object(Bucket="runs", Key=key, Body=body)
                    except (ClientError, BotoCoreError):
                        return  # the server died under this write
                    acknowledged[key] = body
                    del in_flight[key]

            writer = threading.Thread(target=write)
            writer.start()
            time.sleep(kill_after)
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
            writer.join(timeout=30)
        assert len(acknowledged) > round_ * 7
    with served(tmp_path) as (_, last):
        kept = {k: v for k, (v, _) in contents(last["url"], "runs").items()}
        for key, body in kept.items():
            assert body in (acknowledged.get(key), in_flight.get(key)), key
        assert kept.keys() >= acknowledged.keys()
