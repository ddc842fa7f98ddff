"""Secrets: sentinel API keys and database password never appear in anything we produce.

The whole test suite runs with sentinels (tests/conftest.py: the stub
providers' keys, and a password in the test database's DSN that the embedded
server accepts and ignores), and every e2e `cli` run is checked for them.
This suite drives a run through every provider fault and the failure paths
(keys refused, a corrupt manifest, S3 and the database unreachable, bad
configuration), then collects everything produced: each command's stdout and
stderr, the local children's log files, every S3 object (manifests, results,
report.json), and the messages kept in the database, and looks for the
sentinels in all of it.
"""

from __future__ import annotations

import gzip
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg2
import psycopg2.extensions

from devkit.stubs.market_faults import ALPHA_VANTAGE, EXCHANGE_RATE, FAULTS, FINNHUB
from devkit.stubs.market_server import StubMarketServer
from tests.conftest import (
    SENTINEL_DATABASE_PASSWORD,
    SENTINEL_KEYS,
    SENTINELS,
    AwsStack,
    leaked_sentinels,
)
from tests.e2e.conftest import Runner
from tests.factories import insert_plans, many_plans, plan, rows
from tests.reliability.conftest import InProcess

DAY = date(2026, 11, 20)
RUN = "XNYS-20261120"
# Keys the providers refuse: sentinels too, and they must not leak either.
WRONG_KEYS = {name: f"SENTINEL-refused-{name.lower()}-91e0" for name in SENTINEL_KEYS}


def test_the_test_database_dsn_carries_the_sentinel_password_and_connects(
    database_dsn: str, cli: Runner
) -> None:
    if psycopg2.extensions.parse_dsn(database_dsn).get("password") != SENTINEL_DATABASE_PASSWORD:
        # A DATABASE_URL given to the tests with its own password keeps it.
        assert psycopg2.extensions.parse_dsn(database_dsn).get("password")
        return
    psycopg2.connect(database_dsn).close()
    assert cli("verify").returncode == 0


def _decoded(body: bytes) -> str:
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return body.decode("utf-8", "replace")


def test_no_secret_in_any_output_log_file_object_or_message_whatever_fails(
    cli: Runner,
    in_process: InProcess,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    tmp_path: Path,
) -> None:
    produced: list[str] = []

    def run(*args: str, **env: str) -> int:
        done = cli(*args, env={"WORTHY_LOCAL_DIR": str(tmp_path), **env})
        produced.extend([done.stdout, done.stderr])
        return done.returncode

    def fail(*args: str, **env: str) -> int:
        # What needs no process of its own runs in-process: the same edge, cheaper.
        done = in_process(*args, env=env)
        produced.extend([done.out, done.err])
        return done.code

    # Plans that reach every provider fault, an unknown symbol, FX, and an invalid row.
    plans = [
        *many_plans(3, symbols=3, next_run_date=DAY),
        plan(user_id="x", symbol="NOSUCH", next_run_date=DAY),
        plan(user_id="bad", currency="ZZZ", next_run_date=DAY),
    ]
    for number, fault in enumerate(sorted(FAULTS[FINNHUB])):
        plans.append(plan(user_id=f"f{number}", symbol=f"F{number:02d}", next_run_date=DAY))
        market.set_fault(FINNHUB, f"F{number:02d}", fault, retry_after=0)
    for number, fault in enumerate(sorted(FAULTS[ALPHA_VANTAGE])):
        plans.append(plan(user_id=f"a{number}", symbol=f"A{number:02d}", next_run_date=DAY))
        market.set_fault(FINNHUB, f"A{number:02d}", "zeros")
        market.set_fault(ALPHA_VANTAGE, f"A{number:02d}", fault, retry_after=0)
    currencies = ["AUD", "BRL", "CAD", "CHF", "CNY", "DKK", "EUR", "GBP", "HKD", "INR"]
    for currency, fault in zip(currencies, sorted(FAULTS[EXCHANGE_RATE]), strict=True):
        plans.append(
            plan(
                user_id=f"c-{currency}",
                currency=currency,
                amount=Decimal(10_000),
                next_run_date=DAY,
            )
        )
        market.set_fault(EXCHANGE_RATE, currency, fault, retry_after=0)
    insert_plans(db, plans)

    assert fail("plan", "--run-date", DAY.isoformat(), "--submitter", "none") == 0
    assert run("execute", "--run-id", RUN, "--chunk-index", "0") == 75  # provider errors
    assert fail("finalize", "--run-id", RUN) == 0
    assert fail("status", "--run-id", RUN, "--json") == 0
    market.clear_faults()
    assert run("redrive", "--run-id", RUN, "--submitter", "local") == 0  # logs under tmp_path
    assert run("execute", "--run-id", RUN, "--chunk-index", "0", **WRONG_KEYS) == 75  # refused
    assert fail("verify") == 0
    s3_down = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    assert fail("execute", "--run-id", RUN, "--chunk-index", "0", **s3_down) == 75
    unreachable = f"postgresql://worthy:{SENTINEL_DATABASE_PASSWORD}@127.0.0.1:9/worthy"
    assert fail("verify", DATABASE_URL=unreachable, DB_CONNECT_ATTEMPTS="1") == 75
    assert fail("verify", DATABASE_URL=f"password={SENTINEL_DATABASE_PASSWORD} host") == 78
    key = next(k for k in aws.object_keys() if "/chunks/" in k)
    aws.s3().put_object(Bucket=aws.bucket, Key=key, Body=b"tampered")
    assert fail("execute", "--run-id", RUN, "--chunk-index", "0") == 65

    logs = [p.read_text("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file()]
    objects = [_decoded(body) for body in aws.objects().values()]
    messages = [
        str(value)
        for row in rows(db, "SELECT reason FROM plan_executions")
        + rows(db, "SELECT last_error FROM batch_chunks")
        + rows(db, "SELECT detail FROM batch_runs")
        + rows(db, "SELECT source FROM run_quotes")
        for value in row
    ]
    assert any("results/" in k for k in aws.object_keys()) and any(
        "report.json" in k for k in aws.object_keys()
    )
    assert logs and any("chunk finished" in log for log in logs)
    everything = [*produced, *logs, *objects, *messages]
    assert leaked_sentinels(*everything) == []
    for wrong in WRONG_KEYS.values():
        assert not [text for text in everything if wrong in text], "a refused key leaked"
    # ...and the sentinels really were in play: sent, refused, and shown masked.
    assert market.calls() > 0 and len(SENTINELS) == 4
    assert any("invalid" in text.lower() or "401" in text for text in produced)
