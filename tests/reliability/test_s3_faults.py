"""S3 (a private moto server) stopped under a run: exit 75, and nothing bought without a
verified manifest.

A stopped moto loses everything it held, unlike S3. So after the second
fault the test shows both sides honestly: a rerun against the empty
replacement fails cleanly (exit 65, "not found") and buys nothing, and a
rerun against a replacement holding the run's files (what S3 itself would
be once reachable again) completes without buying anything twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import psycopg2.extensions
import pytest

from common.adapters.manifest_store import ManifestStore
from devkit.stubs.market_server import StubMarketServer
from tests.conftest import AwsStack, MotoServer, provision
from tests.factories import insert_plans, many_plans, rows, scalar
from tests.reliability.conftest import Child, InProcess, assert_sound, run_id
from tests.runs import child_env, execute_args, plan_day

DAY = date(2026, 11, 3)
PLANS = 12
BATCH = 4


@pytest.fixture
def moto() -> Iterator[MotoServer]:
    """A moto server of this test's own, which the test may stop."""
    server = MotoServer()
    yield server
    server.stop()


def _planned(db: psycopg2.extensions.connection, dsn: str, stack: AwsStack) -> list[int]:
    ids = insert_plans(db, many_plans(PLANS, symbols=3, next_run_date=DAY))
    plan_day(dsn, ManifestStore(stack.s3()), stack.bucket, DAY, 500)
    return ids


def test_s3_down_before_the_chunk_is_read_exits_75_and_buys_nothing(
    in_process: InProcess,
    db: psycopg2.extensions.connection,
    database_dsn: str,
    moto: MotoServer,
    market: StubMarketServer,
) -> None:
    stack = provision(moto.endpoint)
    _planned(db, database_dsn, stack)
    moto.stop()

    done = in_process(*execute_args(DAY, 0), env=stack.env)

    assert done.code == 75, done.err
    assert len(done.err.strip().splitlines()) == 1
    assert "S3 unavailable" in done.err
    assert scalar(db, "SELECT count(*) FROM plan_executions") == 0
    assert scalar(db, "SELECT count(*) FROM transactions") == 0
    # The attempt is counted, with why, for `status`.
    ((status, attempts, why),) = rows(db, "SELECT status, attempts, last_error FROM batch_chunks")
    assert (status, attempts) == ("failed", 1) and why.startswith("exit 75: S3 unavailable")
    assert market.calls() == 0  # not even priced


def test_s3_down_after_the_writes_exits_75_with_whole_purchases_and_no_rerun_buys_twice(
    in_process: InProcess,
    db: psycopg2.extensions.connection,
    database_dsn: str,
    moto: MotoServer,
    market: StubMarketServer,
) -> None:
    stack = provision(moto.endpoint)
    ids = _planned(db, database_dsn, stack)
    saved = stack.objects()  # run.json and the chunk, as S3 would keep them

    last_commit = f"executor.after_batch_commit@{PLANS // BATCH}"
    env = child_env(
        database_dsn,
        **stack.env,
        WRITE_BATCH_SIZE=str(BATCH),
        WORTHY_FAILPOINTS=f"{last_commit}=pause:60",
    )
    child = Child(execute_args(DAY, 0), env)
    child.wait_for("fail point executor.after_batch_commit: pausing")
    moto.stop()
    child.resume()
    code, _, err = child.finish()

    assert code == 75, err
    assert len(err.strip().splitlines()) == 1 and "S3 unavailable" in err
    assert_sound(db, DAY)
    bought = rows(db, "SELECT * FROM transactions ORDER BY id")
    assert len(bought) == PLANS  # every purchase whole; only the results file is missing
    # Recorded failed, with why (`status` shows it); redrive will rerun it.
    ((status, why),) = rows(db, "SELECT status, last_error FROM batch_chunks")
    assert status == "failed" and why.startswith("exit 75: S3 unavailable"), why

    # moto's state died with it: a rerun against an empty S3 refuses, buying nothing.
    replacement = MotoServer()
    try:
        fresh = provision(replacement.endpoint)
        refused = in_process(*execute_args(DAY, 0), env=fresh.env)
        assert refused.code == 65, refused.err
        assert "not found" in refused.err
        assert rows(db, "SELECT * FROM transactions ORDER BY id") == bought

        # S3 back with the run's files: the rerun completes and buys nothing again.
        s3 = fresh.s3()
        for key, body in saved.items():
            s3.put_object(Bucket=fresh.bucket, Key=key, Body=body)
        calls = market.calls()
        rerun = in_process(*execute_args(DAY, 0), env={**fresh.env, "WRITE_BATCH_SIZE": str(BATCH)})
        assert rerun.code == 0, rerun.err
        assert rows(db, "SELECT * FROM transactions ORDER BY id") == bought
        assert market.calls() == calls  # priced from the run's stored quotes
        assert scalar(db, "SELECT status FROM batch_chunks") == "succeeded"
        assert any(k.endswith("results/00000.json") for k in fresh.object_keys())
    finally:
        replacement.stop()
    assert_sound(db, DAY)
    assert scalar(db, "SELECT count(*) FROM transactions WHERE plan_id = ANY(%s)", (ids,)) == PLANS
    assert run_id(DAY) == scalar(db, "SELECT run_id FROM batch_runs")
