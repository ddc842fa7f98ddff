"""The database connection cut under a child that is writing (pg_terminate_backend).

The child stalls at a fail point (`=pause:`) inside or between its write
batches; meanwhile the test terminates its backend, then lets it go on, as a PostgreSQL restart
or failover would. The child must exit 75 with one line, leave no half-written
purchase (the batch in flight rolls back whole), and a rerun must complete.
Restarting the server itself is not tried: the embedded server is shared by
the whole test session, and a terminated backend is what a restart looks like
from the client's side.
"""

from __future__ import annotations

from datetime import date

import psycopg2.extensions
import pytest

from common.adapters import aws as aws_clients
from common.adapters.manifest_store import ManifestStore
from devkit.stubs.market_server import StubMarketServer
from tests.conftest import AwsStack
from tests.e2e.conftest import Runner
from tests.factories import insert_plans, many_plans, rows, scalar
from tests.reliability.conftest import Child, InProcess, assert_sound
from tests.runs import child_env, execute_args, plan_day

DAY = date(2026, 11, 2)
PLANS = 30
BATCH = 10  # three batches
PAUSE_SECONDS = "60"  # the test resumes the child itself


def _terminate(db: psycopg2.extensions.connection, application: str) -> int:
    """Terminate the backends of `application` in this database; how many there were."""
    done = rows(
        db,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = %s AND datname = current_database()",
        (application,),
    )
    return len([ok for (ok,) in done if ok])


@pytest.mark.parametrize(
    ("failpoint", "committed"),
    [
        ("executor.after_stage@1", 0),  # first batch staged, not applied
        ("executor.before_batch_commit@2", BATCH),  # second batch applied, not committed
        ("executor.after_batch_commit@1", BATCH),  # between batches
        ("executor.after_batch_commit@3", PLANS),  # every batch written; results not yet
    ],
)
def test_a_connection_terminated_mid_write_exits_75_leaves_whole_batches_and_the_rerun_completes(
    in_process: InProcess,
    db: psycopg2.extensions.connection,
    database_dsn: str,
    aws: AwsStack,
    market: StubMarketServer,
    failpoint: str,
    committed: int,
) -> None:
    ids = insert_plans(db, many_plans(PLANS, symbols=3, next_run_date=DAY))
    before = rows(db, "SELECT * FROM recurring_investments ORDER BY id")
    plan_day(database_dsn, ManifestStore(aws_clients.s3_client()), aws.bucket, DAY, 500)

    env = child_env(
        database_dsn,
        WRITE_BATCH_SIZE=str(BATCH),
        # One writer connection: each pause point then has one well-defined set of
        # committed batches (the kill trials cover two writers).
        WRITE_CONNECTIONS="1",
        WORTHY_FAILPOINTS=f"{failpoint}=pause:{PAUSE_SECONDS}",
    )
    child = Child(execute_args(DAY, 0), env)
    child.wait_for(f"fail point {failpoint.split('@')[0]}: pausing")
    assert _terminate(db, "worthy-executor-0") == 1
    child.resume()
    code, _, err = child.finish()

    assert code == 75, err
    assert len(err.strip().splitlines()) == 1, err
    assert "database unavailable" in err and "Traceback" not in err
    assert_sound(db, DAY)
    # Whole batches only: what committed before the cut, nothing of the batch in flight.
    assert scalar(db, "SELECT count(*) FROM transactions") == committed
    assert scalar(db, "SELECT count(*) FROM plan_executions") == committed
    bought = {p for (p,) in rows(db, "SELECT plan_id FROM transactions")}
    after = rows(db, "SELECT * FROM recurring_investments ORDER BY id")
    assert [r for r in after if r[0] not in bought] == [r for r in before if r[0] not in bought]
    assert scalar(db, "SELECT status FROM batch_chunks") != "succeeded"

    rerun = in_process(*execute_args(DAY, 0), env={"WRITE_BATCH_SIZE": str(BATCH)})
    assert rerun.code == 0, rerun.err
    assert_sound(db, DAY)
    assert scalar(db, "SELECT count(*) FROM transactions WHERE plan_id = ANY(%s)", (ids,)) == PLANS
    assert rows(db, "SELECT status, attempts FROM batch_chunks") == [("succeeded", 2)]


def test_an_unreachable_database_exits_75_with_one_line_and_touches_nothing(
    cli: Runner, aws: AwsStack, market: StubMarketServer
) -> None:
    done = cli(
        *execute_args(DAY, 0),
        env={"DATABASE_URL": "postgresql://worthy@127.0.0.1:9/none", "DB_CONNECT_ATTEMPTS": "2"},
    )
    assert done.returncode == 75
    assert len(done.stderr.strip().splitlines()) == 1
    assert "database unavailable after 2 attempt(s)" in done.stderr


def test_a_connection_terminated_mid_snapshot_exits_75_and_the_rerun_completes_the_run_once(
    cli: Runner,
    db: psycopg2.extensions.connection,
    aws: AwsStack,
    market: StubMarketServer,
    database_dsn: str,
) -> None:
    # An RDS failover while the planner streams its snapshot: psycopg2 raises
    # OperationalError after connecting, which must be exit 75 (retried), not 70.
    ids = insert_plans(db, many_plans(PLANS, symbols=6, next_run_date=DAY))
    env = child_env(
        database_dsn, CHUNK_SIZE="5", WORTHY_FAILPOINTS="planner.mid_manifest@2=pause:60"
    )
    args = ["plan", "--run-date", DAY.isoformat(), "--submitter", "local"]
    child = Child(args, env)
    child.wait_for("fail point planner.mid_manifest: pausing")
    assert _terminate(db, "worthy-planner") >= 2  # the run's lock, and the snapshot
    child.resume()
    code, _, err = child.finish()
    assert code == 75, err
    assert len(err.strip().splitlines()) == 1 and "database unavailable" in err, err
    assert scalar(db, "SELECT count(*) FROM transactions") == 0

    rerun = cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert rows(db, "SELECT status, plans_due FROM batch_runs") == [("succeeded", PLANS)]
    assert scalar(db, "SELECT count(*) FROM transactions WHERE plan_id = ANY(%s)", (ids,)) == PLANS
    assert_sound(db, DAY)
