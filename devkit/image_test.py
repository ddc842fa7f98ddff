"""`make image-test`: the production image built on this machine, and a market day played in it.

1. A base image from Debian packages (no public registry is reachable here):
   mmdebstrap's minimal bookworm with python3 and python3-venv, a `python`
   link, and pip's CA file and index as this machine's pip is configured.
2. docker/Dockerfile built with only PYTHON_IMAGE (that base) and RDS_CA_SOURCE
   (the stand-in bundle stage) changed: the locked hashes, the project install,
   `pip check` and the compile step are production's.
3. What only the image can show: `worthy-batch --help` runs; the dev kit cannot be
   imported; every module has its compiled .pyc (unchecked hash: no compile at start).
4. A market day: the planner, every executor child and the finalizer run as
   containers of the image, started by the dev kit's Batch emulator as AWS Batch
   starts them (environment, command, read-only root, init process, user and /tmp
   scratch volume of infra/template.yaml's job definitions), against the embedded
   PostgreSQL (over TCP on 127.0.0.1), moto's S3 and the market stub, as `make
   local-run`. Every job must succeed, and the report must agree with the
   database. A write outside /tmp fails its job: the root is read-only.
5. The canary (the smoke test's run, one empty chunk) and the planner's command as
   its job definition has it (no arguments: today), in a fresh database with no
   plans; the canary's child gives a child's start-to-exit time in the container.
6. Two broken images, thin layers over the built one (the executor package
   removed; an entrypoint that writes outside /tmp), each play a small day that must
   fail: the test can fail.

The last lines give the day's counts, the child's time and the image's size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import psycopg2
import psycopg2.extensions

from common.adapters.batch import submit_planner
from common.adapters.store.migrate import migrate
from common.domain.calendar import calendar_for
from common.domain.run_key import RunKey
from devkit import demo
from devkit.batch.container import PODMAN, ContainerLauncher, ulimits
from devkit.batch.engine import Job
from devkit.batch.local import EXECUTOR, PLANNER, LocalBatch
from devkit.batch.rules import SUCCEEDED
from devkit.embedded_pg import ensure_running, local_dir, shown
from devkit.local_run import BUCKET, LIFTED, latest_market_day, start_stub
from devkit.template import ROOT

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

IMAGE = "localhost/worthy-batch:image-test"
BASE = "localhost/worthy-batch-test-base:latest"
SUITE = "bookworm"  # the Debian release of production's python:3.11.14-slim-bookworm
MARKET = "XNYS"
DATABASE = "worthy_image_test"
DAY_PLANS = 2000
# The planner sizes chunks from the work, and gives a day this small one chunk; a fixed
# size gives it an array of children, as a production-sized day has.
DAY_CHUNK_SIZE = "250"
BROKEN_PLANS = 30
DAY_TIMEOUT_SECONDS = 900.0
BUILD_TIMEOUT_SECONDS = 1800.0
CHECK_TIMEOUT_SECONDS = 120.0
RDS_CA_STAND_IN = "rds-ca-standin"  # docker/Dockerfile's stage: the base's CA file stands in
PIP_CA = "/usr/local/share/worthy-batch-test/pip-ca.crt"
SITE = "/opt/worthy-batch/lib/python3*/site-packages"

# The entrypoint of the canary's session: worthy-batch under a clock, in the container.
TIMER = (
    "import subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "code = subprocess.call(['worthy-batch', *sys.argv[1:]])\n"
    "print(f'image-test: {sys.argv[1]} ran {time.perf_counter() - started:.3f}s"
    " in the container, exit {code}', flush=True)\n"
    "sys.exit(code)\n"
)
TIMED = re.compile(r"image-test: execute ran ([0-9.]+)s in the container, exit 0")

# Every module of the environment has its .pyc, compiled with unchecked hashes (flags 0b01).
PYC_CHECK = f"""
import glob, importlib.util, pathlib, sys
missing, checked, stale = [], 0, []
for source in glob.glob("{SITE}/**/*.py", recursive=True):
    cached = pathlib.Path(importlib.util.cache_from_source(source))
    if not cached.exists():
        missing.append(source)
        continue
    checked += 1
    if int.from_bytes(cached.read_bytes()[4:8], "little") != 1:
        stale.append(str(cached))
print(f"{{checked}} modules compiled, {{len(missing)}} without .pyc,",
      f"{{len(stale)}} checked against their source at import")
sys.exit(1 if missing or stale else 0)
"""

BROKEN = {
    "executor package removed": (
        "USER 0\nRUN rm -r " + SITE + "/executor\nUSER 10001:10001\n",
        "a child cannot import the executor",
    ),
    "a job writes outside /tmp": (
        'ENTRYPOINT ["sh", "-c", "echo leak > /home/worthy/leak && exec worthy-batch \\"$@\\"",'
        ' "worthy-batch"]\n',
        "the read-only root refuses the write",
    ),
}


class ImageTestFailed(Exception):
    """What the image showed that production must not: one line."""


@dataclass(frozen=True)
class Services:
    admin_dsn: str  # the embedded server, from this machine (Unix socket)
    tcp_port: int  # the same server on 127.0.0.1, for the containers
    s3_endpoint: str
    stub_env: dict[str, str]


@dataclass(frozen=True)
class DayResult:
    run_id: str
    outcomes: dict[str, int]
    containers: int
    seconds: float


# -- building ------------------------------------------------------------------------------


def start_moto(stack: ExitStack) -> str:
    """A throwaway moto S3 on loopback for the image's day (its objects die with it)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    stack.callback(server.stop)
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


def podman(*args: str, timeout: float = CHECK_TIMEOUT_SECONDS, **kw: Any) -> str:
    """Run podman; its stdout, or ImageTestFailed with its last lines."""
    done = subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise ImageTestFailed(f"podman {args[0]} exited {done.returncode}: {tail}")
    out: str = done.stdout
    return out


def pip_settings() -> tuple[str | None, str | None]:
    """pip's CA file and index URL on this machine, as `pip config list` reports them
    (environment before files); an index on this machine's disk is left out."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    values: dict[str, str] = {}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")

    def first(name: str) -> str | None:
        for scope in (":env:", "install", "global"):
            if values.get(f"{scope}.{name}"):
                return values[f"{scope}.{name}"]
        return None

    index = first("index-url")
    return first("cert"), index if index and index.startswith(("http://", "https://")) else None


def build_base(work: Path) -> None:
    """A base from Debian packages: what python:3.11-slim-bookworm gives the Dockerfile."""
    cert, index = pip_settings()
    config = ["[global]"]
    hooks = ['ln -s python3 "$1/usr/bin/python"']
    if cert:
        config.append(f"cert = {PIP_CA}")
        hooks += [f'mkdir -p "$1{Path(PIP_CA).parent}"', f"upload {cert} {PIP_CA}"]
    if index:
        config.append(f"index-url = {index}")
    (work / "pip.conf").write_text("\n".join(config) + "\n")
    hooks.append(f"upload {work / 'pip.conf'} /etc/pip.conf")
    bootstrap = [
        "mmdebstrap",
        "--quiet",
        "--variant=minbase",
        "--include=python3,python3-venv,ca-certificates",
        *(f"--customize-hook={hook}" for hook in hooks),
        SUITE,
        "-",
    ]
    with subprocess.Popen(bootstrap, stdout=subprocess.PIPE) as tar:
        assert tar.stdout is not None
        path = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        podman("import", "--change", path, "-", BASE, stdin=tar.stdout, timeout=600)
        if tar.wait(timeout=600) != 0:
            raise ImageTestFailed(f"mmdebstrap exited {tar.returncode}")


def build_image() -> None:
    podman(
        "build",
        "--network",
        "host",
        "--file",
        str(ROOT / "docker" / "Dockerfile"),
        "--build-arg",
        f"PYTHON_IMAGE={BASE}",
        "--build-arg",
        f"RDS_CA_SOURCE={RDS_CA_STAND_IN}",
        "--tag",
        IMAGE,
        str(ROOT),
        timeout=BUILD_TIMEOUT_SECONDS,
    )


def build_broken(name: str, layer: str, work: Path) -> str:
    tag = f"{IMAGE}-broken-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}"
    (work / "Containerfile").write_text(f"FROM {IMAGE}\n{layer}")
    podman("build", "--tag", tag, "--file", str(work / "Containerfile"), str(work))
    return tag


def image_size(image: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).strip())


# -- what only the image shows ---------------------------------------------------------------


def run_in_image(*args: str, entrypoint: str | None = None) -> subprocess.CompletedProcess[str]:
    """One container as the job definitions start them (read-only root, init, /tmp)."""
    argv = [*PODMAN, "run", "--rm", "--network", "none", "--read-only", "--read-only-tmpfs=false"]
    argv += ["--init", "--mount", "type=volume,dst=/tmp", *ulimits()]
    if entrypoint is not None:
        argv += ["--entrypoint", entrypoint]
    return subprocess.run(
        [*argv, IMAGE, *args],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_SECONDS,
        check=False,
    )


def check_image() -> None:
    shown_help = run_in_image("--help")
    if shown_help.returncode != 0 or "usage: worthy-batch" not in shown_help.stdout:
        raise ImageTestFailed(f"worthy-batch --help exited {shown_help.returncode}")
    print("image: worthy-batch --help runs")
    user = run_in_image("-u", entrypoint="id")
    if user.returncode != 0 or user.stdout.strip() in ("", "0"):
        raise ImageTestFailed(f"the image runs as uid {user.stdout.strip() or '?'}, not non-root")
    print(f"image: runs as uid {user.stdout.strip()} (the job definitions name no User)")
    devkit = run_in_image("-c", "import devkit", entrypoint="python")
    if devkit.returncode == 0 or "No module named 'devkit'" not in devkit.stderr:
        raise ImageTestFailed("the dev kit can be imported inside the image")
    print("image: the dev kit cannot be imported (No module named 'devkit')")
    compiled = run_in_image("-c", PYC_CHECK, entrypoint="python")
    if compiled.returncode != 0:
        raise ImageTestFailed(f"not every module is compiled: {compiled.stdout.strip()}")
    print(f"image: {compiled.stdout.strip()}")


# -- the services --------------------------------------------------------------------------


@contextmanager
def tcp_to_unix(socket_path: str) -> Iterator[int]:
    """127.0.0.1:<port> forwarded to a Unix socket: the embedded server listens on a socket
    only, and a container reaches this machine over TCP."""
    loop = asyncio.new_event_loop()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_unix_connection(socket_path)
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    server = loop.run_until_complete(asyncio.start_server(serve, "127.0.0.1", 0))
    port = int(server.sockets[0].getsockname()[1])
    thread = threading.Thread(target=loop.run_forever, name="pg-tcp", daemon=True)
    thread.start()
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def fresh_database(admin_dsn: str, name: str, plans: int, run_date: date) -> str:
    """Drop and create `name` on the embedded server, migrate it, seed `plans` demo plans."""
    admin = psycopg2.connect(admin_dsn)
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    dsn = psycopg2.extensions.make_dsn(admin_dsn, dbname=name)
    conn = psycopg2.connect(dsn)
    try:
        migrate(conn)
        conn.autocommit = False
        if plans:
            demo.seed(conn, plans, run_date)
    finally:
        conn.close()
    return dsn


def container_env(
    services: Services, database: str, prefix: str, extra: dict[str, str]
) -> dict[str, str]:
    """What the jobs' environment gets from this machine (Secrets and resources in AWS)."""
    return {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{services.tcp_port}/{database}",
        "AWS_ENDPOINT_URL": services.s3_endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MANIFEST_BUCKET": BUCKET,
        "MANIFEST_PREFIX": prefix,
        **services.stub_env,
        **LIFTED,
        **extra,
    }


# -- the day -------------------------------------------------------------------------------


Submit = Callable[["BatchClient", str], object]


def plan_day(run_date: date) -> Submit:
    """The planner for one day, submitted as `worthy-batch submit` does."""
    return lambda client, queue: submit_planner(
        client, queue=queue, definition=PLANNER, market=MARKET, run_date=run_date.isoformat()
    )


def play(
    services: Services,
    launcher: ContainerLauncher,
    database: str,
    log_dir: Path,
    submissions: list[Submit],
    extra: dict[str, str] | None = None,
) -> list[Job]:
    """Submit planner jobs to a local Batch whose jobs are containers; wait; every job."""
    shutil.rmtree(log_dir, ignore_errors=True)  # a job's log is appended to
    env = container_env(services, database, f"image-test/{log_dir.name}", extra or {})
    with LocalBatch(log_dir=log_dir, slots=2, base_env=env, launcher=launcher) as batch:
        client = batch.client()
        for submit in submissions:
            submit(client, batch.emulator.queue_arn)
        if not batch.emulator.wait(timeout=DAY_TIMEOUT_SECONDS):
            raise ImageTestFailed(f"jobs still running after {DAY_TIMEOUT_SECONDS:.0f}s")
        jobs = batch.emulator.jobs()
    failed = [j for j in jobs if not j.is_parent and j.status != SUCCEEDED]
    if failed:
        job = failed[0]
        raise ImageTestFailed(
            f"{len(failed)} job(s) did not succeed, first {job.label} ({job.status}, "
            f"{job.status_reason}): {last_error(log_dir / f'{job.label}.log')}"
        )
    return jobs


def last_error(log: Path) -> str:
    """The line of a job's log that says what went wrong, for the one-line failure."""
    lines = [ln for ln in log.read_text("utf-8", "replace").splitlines() if not ln.startswith("==")]
    for line in reversed(lines):
        if re.search(r"Error|error|denied|Read-only", line):
            return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else "no output"


def check_day(dsn: str, s3_endpoint: str, run_id: str) -> dict[str, int]:
    """The run succeeded and its report agrees with the database; the day's counts."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status, manifest_uri FROM batch_runs WHERE run_id = %s", (run_id,))
            row = cur.fetchone()
            cur.execute(
                "SELECT status, count(*) FROM plan_executions WHERE run_id = %s"
                " AND chunk_index IS NOT NULL GROUP BY status",
                (run_id,),
            )
            executions = {str(s): int(n) for s, n in cur.fetchall()}
            cur.execute(  # the planner's: invalid plans, skipped before any chunk
                "SELECT count(*) FROM plan_executions WHERE run_id = %s AND chunk_index IS NULL",
                (run_id,),
            )
            invalid = int(cur.fetchone()[0])  # type: ignore[index]
            cur.execute(
                "SELECT currency, sum(amount), count(*) FROM transactions "
                "WHERE run_id = %s GROUP BY currency",
                (run_id,),
            )
            bought = {str(c): (Decimal(a), int(n)) for c, a, n in cur.fetchall()}
    finally:
        conn.close()
    if row is None or row[0] != "succeeded":
        raise ImageTestFailed(f"{run_id}: run status {row[0] if row else 'missing'}")
    bucket, _, key = str(row[1]).removeprefix("s3://").partition("/")
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    body = s3.get_object(Bucket=bucket, Key=key.replace("run.json", "report.json"))["Body"]
    report: dict[str, Any] = json.loads(body.read())
    outcomes = {k: int(report["outcomes"].get(k, 0)) for k in ("purchased", "skipped", "failed")}
    problems = []
    if (
        report["status"] != "succeeded"
        or report["chunks"]["succeeded"] != report["chunks"]["total"]
    ):
        problems.append(f"report status {report['status']}, chunks {report['chunks']}")
    if {k: v for k, v in outcomes.items() if v} != executions:
        problems.append(f"report {outcomes} but plan_executions {executions}")
    if invalid != report["invalid_plans"]:
        problems.append(f"report {report['invalid_plans']} invalid plans, {invalid} recorded")
    if sum(outcomes.values()) != report["plans_due"]:
        problems.append(f"{sum(outcomes.values())} outcomes for {report['plans_due']} due plans")
    if outcomes["purchased"] == 0 or outcomes["purchased"] != sum(n for _, n in bought.values()):
        problems.append(f"{outcomes['purchased']} purchased but {bought} in transactions")
    invested = {c: Decimal(a) for c, a in report["invested"].items()}
    if invested != {c: a for c, (a, _) in bought.items()}:
        problems.append(f"report invested {invested}, transactions {bought}")
    if problems:
        raise ImageTestFailed(f"{run_id}: " + "; ".join(problems))
    return outcomes


def market_day(services: Services, launcher: ContainerLauncher, run_date: date) -> DayResult:
    run_id = RunKey(MARKET, run_date).run_id
    dsn = fresh_database(services.admin_dsn, DATABASE, DAY_PLANS, run_date)
    print(f"day: {run_id}, {DAY_PLANS} demo plans, each job a container of {IMAGE} ...", flush=True)
    started = time.monotonic()
    chunked = {"CHUNK_SIZE": DAY_CHUNK_SIZE}
    jobs = play(services, launcher, DATABASE, runs_dir() / run_id, [plan_day(run_date)], chunked)
    seconds = time.monotonic() - started
    outcomes = check_day(dsn, services.s3_endpoint, run_id)
    containers = sum(len(j.attempts) for j in jobs if not j.is_parent)
    children = sum(1 for j in jobs if j.definition.name == EXECUTOR and not j.is_parent)
    print(
        f"day: {containers} containers (planner, {children} executor children, finalizer), "
        f"all SUCCEEDED in {seconds:.0f}s"
    )
    return DayResult(run_id, outcomes, containers, seconds)


def canary_and_planner_command(services: Services, run_date: date) -> tuple[float, float]:
    """The canary (one empty chunk) and `plan` exactly as its job definition runs it, in a
    database with no plans; the canary child's seconds in the container and as Batch saw it."""
    database = f"{DATABASE}_canary"
    fresh_database(services.admin_dsn, database, 0, run_date)
    timed = ContainerLauncher(IMAGE, entrypoint=["python", "-c", TIMER])
    log_dir = runs_dir() / "canary"

    def canary(client: BatchClient, queue: str) -> object:  # the last Saturday or Sunday
        return submit_planner(
            client, queue=queue, definition=PLANNER, market=MARKET, run_date=None, canary=True
        )

    def as_defined(client: BatchClient, queue: str) -> object:  # `plan`: today, no plans
        return client.submit_job(jobName="plan-as-defined", jobQueue=queue, jobDefinition=PLANNER)

    jobs = play(services, timed, database, log_dir, [canary, as_defined])
    children = [j for j in jobs if j.definition.name == EXECUTOR and not j.is_parent]
    if len(children) != 1:
        raise ImageTestFailed(f"the canary ran {len(children)} executor children, not 1")
    child = children[0]
    found = TIMED.search((log_dir / f"{child.label}.log").read_text("utf-8", "replace"))
    if found is None:
        raise ImageTestFailed(f"the canary's child printed no time: {log_dir}/{child.label}.log")
    attempt = child.attempts[-1]
    container_seconds = (attempt.stopped_at or attempt.started_at) - attempt.started_at
    print(
        f"canary: plan --canary, its empty chunk and finalizer, and `plan` as defined: "
        f"{len(jobs)} jobs SUCCEEDED"
    )
    return float(found.group(1)), container_seconds


def broken_images(services: Services, work: Path, run_date: date) -> None:
    """Each broken image must fail a small day: the test can fail."""
    for name, (layer, why) in BROKEN.items():
        tag = build_broken(name, layer, work)
        database = f"{DATABASE}_broken"
        fresh_database(services.admin_dsn, database, BROKEN_PLANS, run_date)
        log_dir = runs_dir() / f"broken-{tag.rsplit('-broken-', 1)[1]}"
        try:
            play(services, ContainerLauncher(tag), database, log_dir, [plan_day(run_date)])
        except ImageTestFailed as exc:
            print(f"broken image ({name}): the image test fails, as it must ({why}): {exc}")
        else:
            raise ImageTestFailed(f"a broken image ({name}) passed the image test")
        finally:
            podman("rmi", "--force", tag)


def runs_dir() -> Path:
    return local_dir() / "image-test"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.image_test", description=__doc__)
    parser.add_argument(
        "--reuse-base",
        action="store_true",
        help="keep the Debian base image if one is there (CI always builds it anew)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        with ExitStack() as stack:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="image-test-")))
            exists = subprocess.run([*PODMAN, "image", "exists", BASE], check=False).returncode
            if not (args.reuse_base and exists == 0):
                print(
                    f"base: Debian {SUITE} (mmdebstrap, minbase, python3) as {BASE} ...", flush=True
                )
                build_base(work)
                print(f"base: built in {time.monotonic() - started:.0f}s")
            print(f"build: docker/Dockerfile as {IMAGE} (PYTHON_IMAGE={BASE}) ...", flush=True)
            building = time.monotonic()
            build_image()
            print(f"build: built in {time.monotonic() - building:.0f}s")
            check_image()
            admin_dsn = ensure_running()
            where = psycopg2.extensions.parse_dsn(admin_dsn)
            socket_path = f"{where['host']}/.s.PGSQL.{where.get('port', '5432')}"
            port = stack.enter_context(tcp_to_unix(socket_path))
            run_date = latest_market_day(MARKET, calendar_for(MARKET).today(datetime.now(UTC)))
            endpoint = start_moto(stack)
            boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",
            ).create_bucket(Bucket=BUCKET)
            stub = start_stub(stack, run_date, MARKET)
            services = Services(admin_dsn, port, endpoint, stub.environment())
            print(
                f"services: PostgreSQL on 127.0.0.1:{port}, S3 {endpoint}, market stub {stub.url}"
            )
            day = market_day(services, ContainerLauncher(IMAGE), run_date)
            inside, as_batch = canary_and_planner_command(services, run_date)
            broken_images(services, work, run_date)
            size = image_size(IMAGE)
    except ImageTestFailed as exc:
        print(f"image-test: FAILED: {exc}; logs in {shown(runs_dir())}")
        return 1
    except (subprocess.SubprocessError, OSError) as exc:  # podman missing, a step hung
        print(f"image-test: could not run: {exc}; `make image-test` installs what it needs")
        return 1
    o = day.outcomes
    print(f"\nimage-test: passed in {time.monotonic() - started:.0f}s; logs in {shown(runs_dir())}")
    print(
        f"day {day.run_id} in the image: purchased {o['purchased']}, "
        f"skipped {o['skipped']}, failed {o['failed']}"
    )
    print(
        f"child on an empty chunk: {inside:.2f}s start to exit in the container "
        f"({as_batch:.2f}s as Batch sees it, container start included)"
    )
    print(f"image {IMAGE}: {size / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
