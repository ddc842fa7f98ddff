"""The emulator behind AWS Batch's REST API on loopback, so boto3 talks to it unchanged.

Point a client at it with `endpoint_url` (or boto3's own `AWS_ENDPOINT_URL_BATCH`).
Operations: SubmitJob, DescribeJobs, ListJobs, TerminateJob, CancelJob,
DescribeJobDefinitions, DescribeJobQueues, as
`POST /v1/<operation>` with JSON bodies (API_SubmitJob.html and friends). A
refused request is HTTP 400 with a `ClientException`, which boto3 raises as
`ClientError` exactly as it does for the real service.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devkit.batch.engine import BatchEmulator
from devkit.batch.rules import FINAL, Refused


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, emulator: BatchEmulator) -> None:
        self.emulator = emulator
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        return

    def do_POST(self) -> None:  # noqa: N802 (stdlib's name)
        emulator: BatchEmulator = self.server.emulator  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            operation = self.path.rstrip("/").rsplit("/", 1)[-1]
            self._send(200, _operate(emulator, operation, body))
        except Refused as exc:
            self._send(400, {"__type": "ClientException", "message": str(exc)}, "ClientException")
        except (ValueError, KeyError, TypeError) as exc:
            self._send(
                400,
                {"__type": "ClientException", "message": f"bad request: {exc}"},
                "ClientException",
            )

    def _send(self, status: int, body: Any, error: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.end_headers()
        self.wfile.write(data)


def _operate(emulator: BatchEmulator, operation: str, body: dict[str, Any]) -> Any:
    if operation == "submitjob":
        return emulator.submit_job(body)
    if operation == "describejobs":
        return {"jobs": emulator.describe_jobs(body.get("jobs") or [])}
    if operation == "listjobs":
        return {
            "jobSummaryList": emulator.list_jobs(
                job_queue=body.get("jobQueue"),
                array_job_id=body.get("arrayJobId"),
                job_status=body.get("jobStatus"),
                filters=body.get("filters") or [],
            )
        }
    if operation == "describejobdefinitions":
        found = emulator.describe_job_definitions(
            body.get("jobDefinitions") or [], body.get("jobDefinitionName")
        )
        wanted = body.get("status")
        return {"jobDefinitions": [d for d in found if not wanted or d["status"] == wanted]}
    if operation == "describejobqueues":
        return {"jobQueues": emulator.describe_job_queues(body.get("jobQueues") or [])}
    if operation in ("terminatejob", "canceljob"):
        job = emulator.job(str(body["jobId"]))
        # CancelJob leaves a job that has started alone; TerminateJob stops it too.
        if operation == "terminatejob" or job.status not in ("STARTING", "RUNNING", *FINAL):
            emulator.terminate_job(job.job_id, str(body.get("reason", "")))
        return {}
    raise Refused(f"operation {operation!r} is not supported by the emulator")


class BatchApi:
    """The HTTP front of one emulator; `url` is its endpoint."""

    def __init__(self, emulator: BatchEmulator) -> None:
        self._server = _Server(emulator)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="batch-api",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> BatchApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
