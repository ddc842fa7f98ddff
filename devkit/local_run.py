"""`make local-run`: both stages on this machine, nothing outside it.

embedded PostgreSQL (.local/), migrated, demo plans seeded (again when --plans differs)
moto's server on a free loopback port, its objects kept in .local/s3/ (local_s3.py)
the stub market server on loopback (unless real API keys are set)
`worthy-batch plan --submitter local`: executor children as processes, then finalize
the report, a copy under .local/runs/<run_id>/report.json; servers stopped

Everything it keeps is under .local/, so the same command again resumes a day that an
interrupt (Ctrl-C: the stages are stopped, exit 130) or a crash left unfinished.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from time import monotonic as time_monotonic
from time import sleep
from typing import TYPE_CHECKING, Any

import boto3
from psycopg2.extensions import connection

from common.adapters.db import connect
from common.adapters.store.migrate import migrate
from common.adapters.store.runs import RunRepository
from common.domain.calendar import calendar_for, resolve_run_day
from common.domain.errors import ConfigError, RunDateRefused
from common.domain.run_key import RunKey
from common.platform.logging import get_logger, setup_logging
from devkit import demo
from devkit.embedded_pg import ensure_running, local_dir, shown
from devkit.local_s3 import LocalS3
from devkit.local_submitter import python_command
from devkit.stubs.market_limits import limits_from_environment
from devkit.stubs.market_server import StubMarketServer
from finalizer.summary import reason_lines

if TYPE_CHECKING:
    from entry.bootstrap import Root

log = get_logger(__name__)

BUCKET = "worthy-local-runs"
STOP_GRACE_SECONDS = 10.0  # after SIGTERM, how long the stages get before SIGKILL
# In every stage's environment: who started it (pid) for which local state, so that
# stages left running by a local-run that was killed (SIGKILL, OOM) can be found.
STAGE_MARK = "WORTHY_LOCAL_STAGE_OF"
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
        STAGE_MARK: f"{os.getpid()}:{local_dir()}",
    }
    if stub is not None:
        env.update(stub.environment())
        env.update({name: value for name, value in LIFTED.items() if not os.environ.get(name)})
    return env


def checked_date(args: argparse.Namespace, now: datetime) -> date:
    """--date (checked as `plan` checks it), else the latest market day."""
    if args.date is None:
        return latest_market_day(args.market, resolve_run_day(args.market, None, now).today)
    try:
        day = resolve_run_day(args.market, args.date, now, allow_future=args.allow_future_date)
    except RunDateRefused as exc:
        raise RunDateRefused(exc.why, option="--date") from None
    return day.key.run_date


def s3_dir() -> Path:
    return local_dir() / "s3"


def run(args: argparse.Namespace, root: Root) -> int:
    root.settings()  # the environment parsed as the stages will: a bad value stops here (78)
    market = args.market
    run_date = checked_date(args, datetime.now(UTC))
    if not os.environ.get("LOG_FORMAT"):
        setup_logging("text")  # a person is reading: the stages' lines are text too
    try:
        with interrupted_by_sigterm():
            return _run(args, market, run_date)
    except KeyboardInterrupt:
        resume = f"worthy-batch local-run --date {run_date.isoformat()} --market {market}"
        if args.plans is not None:
            resume += f" --plans {args.plans}"
        if args.fail_symbols:
            resume += f" --fail-symbols {args.fail_symbols}"
        if args.allow_future_date:
            resume += " --allow-future-date"
        sys.stdout.flush()
        sys.stderr.write(
            f"\nworthy-batch local-run: interrupted; {RunKey(market, run_date)} is kept under "
            f"{shown(local_dir())}: run the same command again to resume it ({resume})\n"
        )
        return 130


@contextmanager
def interrupted_by_sigterm() -> Iterator[None]:
    """SIGTERM (`timeout`, `docker stop`, a closing terminal) stops like Ctrl-C: the stages
    and servers are stopped, not left running without their S3."""

    def interrupt(*_: object) -> None:  # a signal handler's (signum, frame)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace, market: str, run_date: date) -> int:
    run_id = RunKey(market, run_date).run_id
    runs_dir = local_dir() / "runs"
    failing = [s.strip().upper() for s in (args.fail_symbols or "").split(",") if s.strip()]
    with ExitStack() as stack:
        # DATABASE_URL wins (tests point it at their database); else the embedded server.
        dsn = os.environ.get("DATABASE_URL") or ensure_running()
        conn = connect(dsn)
        stack.callback(conn.close)
        migrate(conn)
        conn.autocommit = False
        s3 = stack.enter_context(LocalS3(s3_dir()))
        stop_orphans(s3)
        seeded = seed_demo(conn, args.plans, run_date, s3, runs_dir)
        where = "DATABASE_URL" if os.environ.get("DATABASE_URL") else shown(local_dir() / "pgdata")
        print(f"database: PostgreSQL ({where}); {seeded} demo plans")
        endpoint = s3.endpoint
        s3.create_bucket(BUCKET)
        real = all(os.environ.get(k) for k in REAL_KEYS)
        stub = None if real else start_stub(stack, run_date, market)
        source = "real providers (API keys set)" if stub is None else f"stub on {stub.url}"
        print(f"S3: moto on {endpoint}, objects kept in {shown(s3_dir())}; market data: {source}")
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
                *(["--allow-future-date"] if args.allow_future_date else []),
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
        if status == "submitted":
            # An earlier local-run ended between its jobs and their finalizer: finish the day
            # as an operator would (redrive reruns what did not succeed, then finalizes).
            print(f"{run_id} was submitted but never closed; worthy-batch redrive", flush=True)
            redriven = _worthy(["redrive", "--run-id", run_id, "--submitter", "local"], env)
            if redriven != 0:
                print(f"local-run: redrive exited {redriven}; see the lines above")
                return redriven
            record = RunRepository(conn).get(run_id)
            status = record.status if record else "unknown"
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


def seed_demo(
    conn: connection, plans: int | None, run_date: date, s3: LocalS3, runs_dir: Path
) -> int:
    """Seed the demo once; when `plans` differs from what is seeded, start it over first
    (the runs' files too), unless a run is unfinished or another local-run is going."""
    seeded = demo.already_seeded(conn)
    if seeded and plans is not None and plans != seeded:
        if not s3.owner:
            raise ConfigError(
                {
                    "--plans": f"the demo holds {seeded} plans; another local-run or local-ops is "
                    "using .local/ now: start over once it has ended"
                }
            )
        demo.start_over(conn, seeded, plans)
        s3.empty()
        shutil.rmtree(runs_dir, ignore_errors=True)
        print(
            f"the demo held {seeded} plans, --plans asks for {plans}: started it over "
            "(plans, runs, purchases, holdings and the runs' files removed)"
        )
    return demo.seed(conn, plans or demo.DEFAULT_PLANS, run_date)


def _worthy(args: list[str], env: dict[str, str]) -> int:
    """`worthy-batch ARGS` in a process group of its own (with every process it starts), so
    that an interrupt stops them all, whoever received it: Ctrl-C or `kill -INT`."""
    child = subprocess.Popen(python_command(args), env=env, process_group=0)
    try:
        return exit_status(child.wait())
    except KeyboardInterrupt:
        stop_group(child)
        raise


def exit_status(code: int) -> int:
    """A child's return code as a shell reports it: killed by signal N is 128 + N."""
    return 128 - code if code < 0 else code


def stop_group(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM `child`'s process group (the stage and its executors: as a crash, which every
    stage survives), SIGKILL what is left after a grace period or a second interrupt."""
    try:
        _signal_group(child.pid, signal.SIGTERM)
        deadline = time_monotonic() + STOP_GRACE_SECONDS
        while time_monotonic() < deadline and _group_alive(child):
            sleep(0.05)
    finally:
        _signal_group(child.pid, signal.SIGKILL)
        child.wait()


def stop_orphans(s3: LocalS3) -> None:
    """SIGKILL the stages that a killed local-run (or local-ops) left running on this local
    state: without their S3 and market data they can only fail, and would do it beside
    this run. Only the process that serves the state looks (no other one is then alive)."""
    if not s3.owner:
        return
    mine = str(local_dir())
    groups = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile, or not ours
        for item in environ:
            name, _, value = item.decode(errors="replace").partition("=")
            if name != STAGE_MARK:
                continue
            starter, _, where = value.partition(":")
            if where == mine and starter.isdigit() and not _alive(int(starter)):
                with suppress(ProcessLookupError):
                    groups.add(os.getpgid(int(entry.name)))
    for group in groups:
        _signal_group(group, signal.SIGKILL)
    if groups:
        print(f"stopped the stages an earlier, killed local-run left running ({len(groups)})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, and someone else's
    return True


def _group_alive(child: subprocess.Popen[bytes]) -> bool:
    child.poll()
    try:
        os.killpg(child.pid, 0)
    except ProcessLookupError:
        return False
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


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
    cost = report.get("cost")
    if cost:
        out.write(
            f"cost: {cost['vcpu_seconds']} vCPU-s, {cost['gb_seconds']} GB-s measured "
            f"({cost['billed_vcpu_seconds']} vCPU-s billed, a minute a job at least); "
            f"estimated ${cost['estimated_usd']} (Fargate ${cost['fargate_usd']}, "
            "providers' calls the rest; docs/sizing-and-cost.md: Cost per run)\n"
        )
    for line in reason_lines(report):  # invalid rows, plans not bought and why
        out.write(line + "\n")
    out.write(f"report: {shown(saved)}\n")
