"""Loopback servers shared by the tests and the benchmark: moto in its own process, and
fresh PostgreSQL databases on the embedded (or DATABASE_URL's) server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import psycopg2
import psycopg2.extensions
import requests

from common.adapters.store.migrate import migrate


class MotoServer:
    """moto's server in its own process on a free loopback port (Batch without Docker).

    Its own process, not a thread: moto spends ~8 ms of CPU per request, and
    sharing the caller's GIL would halve the throughput of both.
    """

    def __init__(self, env: dict[str, str] | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{self.endpoint}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        requests.post(
            f"{self.endpoint}/moto-api/config", json={"batch": {"use_docker": False}}, timeout=10
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def fresh_database(server_dsn: str, name: str) -> str:
    """Drop and recreate database `name` on the server, migrated; return its DSN."""
    admin = psycopg2.connect(server_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    dsn: str = psycopg2.extensions.make_dsn(server_dsn, dbname=name)
    conn = psycopg2.connect(dsn)
    migrate(conn)
    conn.close()
    return dsn
