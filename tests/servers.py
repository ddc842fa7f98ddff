"""Loopback servers shared by the tests and the benchmark: moto in its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import requests


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
