"""`make local-run`: both stages on this machine, nothing outside it.

embedded PostgreSQL (.local/), migrated, demo plans seeded once
moto's server on a free loopback port (S3, bucket created)
the stub market server on loopback (unless real API keys are set)
`worthy-batch plan --submitter local`: executor children as processes, then finalize
the report, a copy under .local/runs/<run_id>/report.json; servers stopped
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from contextlib import ExitStack
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3

from common.db import connect
from common.domain.calendar import calendar_for
from common.domain.models import run_id_for
from common.logging import get_logger, setup_logging
from common.store.migrate import migrate
from common.store.runs import RunRepository
from devkit import demo
from devkit.embedded_pg import ensure_running, local_dir, shown
from devkit.local_submitter import python_command
from devkit.stubs.market_limits import limits_from_environment
from devkit.stubs.market_server import StubMarketServer
from finalizer.summary import reason_lines

log = get_logger(__name__)

BUCKET = "worthy-local-runs"
REAL_KEYS = ("FINNHUB_API_KEY", "ALPHA_VANTAGE_API_KEY")
# Against the stub, limits the user did not set are lifted so the demo runs in seconds; the
# stub enforces the ones set (per key, as the providers do), so pacing shows and nothing 429s.
# Against real providers their defaults (the free tiers) stay.
LIFTED = {
    **dict.fromkeys(
        (
            "FINNHUB_CALLS_PER_MINUTE",
            "ALPHA_VANTAGE_CALLS_PER_MINUTE",
            "EXCHANGE_RATE_CALLS_PER_MINUTE",
        ),
        "100000",
    ),
    **dict.fromkeys(
        ("FINNHUB_CALLS_PER_DAY", "ALPHA_VANTAGE_CALLS_PER_DAY", "EXCHANGE_RATE_CALLS_PER_DAY"),
        "unlimited",
    ),
}


def latest_market_day(market: str, today: date) -> date:
    calendar = calendar_for(market)
    day = today
    while not calendar.is_market_day(day):
        day -= timedelta(days=1)
    return day


def start_moto(stack: ExitStack) -> str:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    stack.callback(server.stop)
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


def start_stub(stack: ExitStack, run_date: date, market: str) -> StubMarketServer:
    close = datetime.combine(run_date, time(16, 0), calendar_for(market).timezone)
    stub = StubMarketServer(
        as_of=min(close, datetime.now(UTC)),
        unknown_symbols={demo.UNKNOWN_SYMBOL},
        limits=limits_from_environment(os.environ),
    )
    stub.start()
    stack.callback(stub.stop)
    stub.set_fault("finnhub", demo.THROTTLED_SYMBOL, "http_429", retry_after=0)
    return stub


def stage_environment(dsn: str, endpoint: str, stub: StubMarketServer | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MANIFEST_BUCKET": BUCKET,
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),
    }
    if stub is not None:
        env.update(stub.environment())
        env.update({name: value for name, value in LIFTED.items() if not os.environ.get(name)})
    return env


def run(args: argparse.Namespace) -> int:
    market = args.market
    run_date = args.date or latest_market_day(market, calendar_for(market).today(datetime.now(UTC)))
    run_id = run_id_for(market, run_date)
    runs_dir = local_dir() / "runs"
    failing = [s.strip().upper() for s in (args.fail_symbols or "").split(",") if s.strip()]
    if not os.environ.get("LOG_FORMAT"):
        setup_logging("text")  # a person is reading: the stages' lines are text too
    with ExitStack() as stack:
        # DATABASE_URL wins (tests point it at their database); else the embedded server.
        dsn = os.environ.get("DATABASE_URL") or ensure_running()
        conn = connect(dsn)
        stack.callback(conn.close)
        migrate(conn)
        conn.autocommit = False
        seeded = demo.seed(conn, args.plans, run_date)
        where = "DATABASE_URL" if os.environ.get("DATABASE_URL") else shown(local_dir() / "pgdata")
        print(f"database: PostgreSQL ({where}); {seeded} demo plans")
        endpoint = start_moto(stack)
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        ).create_bucket(Bucket=BUCKET)
        real = all(os.environ.get(k) for k in REAL_KEYS)
        stub = None if real else start_stub(stack, run_date, market)
        source = "real providers (API keys set)" if stub is None else f"stub on {stub.url}"
        print(f"S3: moto on {endpoint}; market data: {source}")
        if failing and stub is not None:
            for symbol in failing:
                for provider in ("finnhub", "alphavantage"):
                    stub.set_fault(provider, symbol, "http_500")
            print(f"both price providers answer HTTP 500 for {', '.join(failing)}")
        print(f"planning {run_id} on the local AWS Batch emulator...", flush=True)
        env = stage_environment(dsn, endpoint, stub)
        planned = _worthy(
            [
                "plan",
                "--market",
                market,
                "--run-date",
                run_date.isoformat(),
                "--submitter",
                "local",
            ],
            env,
        )
        if planned != 0:
            print(f"local-run: the planner exited {planned}; see the lines above")
            return planned
        record = RunRepository(conn).get(run_id)
        status = record.status if record else "unknown"
        if status == "market_closed":
            print(
                f"{run_id}: the market is closed on {run_date} "
                f"({record.detail if record else ''}); nothing to do"
            )
            return 0
        manifest_uri = record.manifest_uri if record else None
        report = _show(endpoint, manifest_uri, runs_dir / run_id, stub, status)
        if report is None or report["status"] == "succeeded" or stub is None or not failing:
            return 0
        # The providers are back: what an operator does next on a partial day.
        stub.clear_faults()
        stub.set_fault("finnhub", demo.THROTTLED_SYMBOL, "http_429", retry_after=0)
        print(f"\nproviders answer again; worthy-batch redrive --run-id {run_id}", flush=True)
        redriven = _worthy(["redrive", "--run-id", run_id, "--submitter", "local"], env)
        if redriven != 0:
            print(f"local-run: redrive exited {redriven}; see the lines above")
            return redriven
        _show(endpoint, manifest_uri, runs_dir / run_id, stub, "redriven")
    return 0


def _worthy(args: list[str], env: dict[str, str]) -> int:
    return subprocess.run(python_command(args), env=env, check=False).returncode


def _show(
    endpoint: str,
    manifest_uri: str | None,
    run_dir: Path,
    stub: StubMarketServer | None,
    status: str,
) -> dict[str, Any] | None:
    """Print the run's report (fetched from S3, or the copy of an earlier local-run)."""
    report = _fetch_report(endpoint, manifest_uri)
    saved = run_dir / "report.json"
    if report is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(report, indent=1))
    elif saved.exists():
        report = json.loads(saved.read_text())
        print(f"{run_dir.name} was already complete ({status}); its report from the first run:")
    if report is None:
        print(f"{run_dir.name}: {status}; no report (nothing was due)")
        return None
    print_report(report, stub.call_counts() if stub else None, saved)
    return report


def _fetch_report(endpoint: str, manifest_uri: str | None) -> dict[str, Any] | None:
    if not manifest_uri:
        return None
    bucket, _, key = manifest_uri.removeprefix("s3://").partition("/")
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    try:
        body = s3.get_object(Bucket=bucket, Key=key.replace("run.json", "report.json"))["Body"]
    except s3.exceptions.NoSuchKey:
        return None
    document: dict[str, Any] = json.loads(body.read())
    return document


def print_report(report: dict[str, Any], stub_calls: dict[str, Any] | None, saved: Path) -> None:
    out = sys.stdout
    outcomes, chunks = report["outcomes"], report["chunks"]
    out.write(f"\n== {report['run_id']}: {report['status']} ==\n")
    out.write(
        f"plans due {report['plans_due']}, invalid (skipped) {report['invalid_plans']}; "
        f"chunks {chunks['succeeded']}/{chunks['total']} succeeded\n"
    )
    unfinished = sorted(chunks["failed"] + chunks["pending"])
    if unfinished:
        out.write(f"chunks not succeeded: {', '.join(map(str, unfinished))}\n")
    out.write(
        f"purchased {outcomes.get('purchased', 0)}, skipped {outcomes.get('skipped', 0)}, "
        f"failed {outcomes.get('failed', 0)}\n"
    )
    for reason, count in report["reasons"].items():
        out.write(f"  {reason:<24} {count}\n")
    invested = ", ".join(f"{Decimal(a):,.2f} {c}" for c, a in report["invested"].items())
    out.write(f"invested: {invested or 'nothing'}\n")
    calls = report["api_calls"]
    out.write("API calls: " + (", ".join(f"{p} {n}" for p, n in calls.items()) or "none") + "\n")
    spent = report.get("quota_exhausted") or {}
    if spent:
        skipped = ", ".join(f"{p} {n}" for p, n in spent.items())
        out.write(f"  skipped, daily budget spent (quota_exhausted): {skipped}\n")
    if stub_calls is not None:
        counted = {
            p: v["total"] for p, v in stub_calls.items() if isinstance(v, dict) and "total" in v
        }
        if counted:
            out.write(f"  requests the stub served: {json.dumps(counted)} (retries included)\n")
    for timing in report["chunk_timings"]:
        out.write(
            f"  chunk {timing['chunk']:>3}: {timing['items']:>5} plans in "
            f"{timing['duration_ms'] / 1000:5.2f}s (attempt {timing['attempt']})\n"
        )
    for line in reason_lines(report):  # invalid rows, plans not bought and why
        out.write(line + "\n")
    out.write(f"report: {shown(saved)}\n")
