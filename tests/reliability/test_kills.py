"""Executor children SIGKILLed at random moments, then `redrive`: nothing twice, nothing lost.

Each trial is one market day of the same daily plans (so every trial has
every plan due again), planned into one chunk of three write batches. Its
child is killed, seeded, in one of these ways: at a fail point inside a batch
(after staging, before its commit) or between batches (after the n-th
commit), or by SIGKILL from here after a random delay (anywhere: start-up,
pricing, writing, reporting; or too late, when it already finished). Then
`worthy-batch redrive --submitter local` finishes the run, and the ledger is
checked. (Children of one chunk running at once are the duplicates suite.)

The trials run in two lanes at once, one per market (XNYS and XTSE, each
with its own plans, runs and calendar), so that one lane's redrive overlaps
the other's children: the suite is bound by interpreter start-ups (four a
trial), and this keeps both cores busy.
"""

from __future__ import annotations

import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import psycopg2
import psycopg2.extensions

from common.adapters import aws as aws_clients
from common.adapters.manifest_store import ManifestStore
from devkit.stubs.market_server import StubMarketServer
from tests.conftest import AwsStack
from tests.e2e.conftest import Runner
from tests.factories import insert_plans, many_plans, rows, scalar
from tests.reliability.conftest import Child, assert_sound, market_days, run_id
from tests.runs import child_env, execute_args, plan_day

SEED = 20261127
TRIALS = 20
LANES = {"XNYS": "USD", "XTSE": "CAD"}  # market -> the plans' currency
PLANS = 12  # 3 symbols x 4 plans, one chunk
CHUNK_SIZE = 12
WRITE_BATCH_SIZE = 4  # three batches per chunk
BATCHES = CHUNK_SIZE // WRITE_BATCH_SIZE
FAILPOINTS = ("executor.after_stage", "executor.before_batch_commit", "executor.after_batch_commit")
FIRST_DAY = date(2026, 10, 26)  # every day after it is on or before the stub's quote, 11-27


@dataclass(frozen=True)
class Kill:
    """How one child dies: at a fail point (`name@n`), or by SIGKILL after `delay` s."""

    failpoint: str | None = None
    delay: float | None = None

    def __str__(self) -> str:
        return self.failpoint or f"timer:{self.delay}s"


def choose_kill(rng: random.Random) -> Kill:
    if rng.random() < 0.7:
        return Kill(failpoint=f"{rng.choice(FAILPOINTS)}@{rng.randint(1, BATCHES)}")
    return Kill(delay=round(rng.uniform(0.3, 2.0), 2))


def kill_children(database_dsn: str, market: str, day: date, kills: list[Kill]) -> None:
    """Start a child per chunk, at once; kill each as `kills` says; check how each ended."""
    children = []
    for index, kill in enumerate(kills):
        extra = {"WRITE_BATCH_SIZE": str(WRITE_BATCH_SIZE)}
        if kill.failpoint:
            extra["WORTHY_FAILPOINTS"] = kill.failpoint
        children.append(Child(execute_args(day, index, market), child_env(database_dsn, **extra)))
    started = time.monotonic()
    timed = [(k.delay, c) for k, c in zip(kills, children, strict=True) if k.delay is not None]
    for delay, child in sorted(timed, key=lambda dc: dc[0]):
        time.sleep(max(0.0, started + delay - time.monotonic()))
        child.kill()
    for kill, child in zip(kills, children, strict=True):
        code, _, err = child.finish()
        if kill.failpoint:
            assert code == -signal.SIGKILL, (market, day, str(kill), code, err)
        else:
            assert code in (0, -signal.SIGKILL), (market, day, str(kill), code, err)  # or done


def run_lane(
    cli: Runner, database_dsn: str, bucket: str, market: str, trials: int, seed: int
) -> list[str]:
    """`trials` days of `market`: plan, kill, redrive, check. Returns the kills made."""
    rng = random.Random(seed)
    days = market_days(FIRST_DAY, trials + 1, market)
    db = psycopg2.connect(database_dsn)  # this lane's own connection
    db.autocommit = True
    store = ManifestStore(aws_clients.s3_client())
    seen: list[str] = []
    try:
        ids = insert_plans(
            db,
            many_plans(
                PLANS,
                symbols=3,
                exchange=market,
                currency=LANES[market],
                asset_currency=LANES[market],
                frequency="daily",
                start_date=days[0],
                next_run_date=days[0],
            ),
        )
        for trial, day in enumerate(days[:trials]):
            run = run_id(day, market)
            plan_day(database_dsn, store, bucket, day, CHUNK_SIZE, market)
            assert scalar(db, "SELECT chunk_count FROM batch_runs WHERE run_id = %s", (run,)) == 1
            kills = [choose_kill(rng)]
            seen += [str(k) for k in kills]
            where = (run, [str(k) for k in kills])

            kill_children(database_dsn, market, day, kills)
            assert_sound(db, day)  # even straight after the crash, nothing is half-written

            redriven = cli(
                "redrive",
                "--run-id",
                run,
                "--submitter",
                "local",
                env={"LOCAL_PARALLELISM": "2", "WRITE_BATCH_SIZE": str(WRITE_BATCH_SIZE)},
            )
            assert redriven.returncode == 0, (where, redriven.stderr)

            assert_sound(db, day)
            assert rows(
                db,
                "SELECT status, count(*) FROM plan_executions "
                "WHERE scheduled_date = %s AND plan_id = ANY(%s) GROUP BY 1",
                (day, ids),
            ) == [("purchased", PLANS)], where
            assert rows(
                db,
                "SELECT DISTINCT next_run_date, runs_completed FROM recurring_investments "
                "WHERE id = ANY(%s)",
                (ids,),
            ) == [(days[trial + 1], trial + 1)], where
            assert rows(
                db, "SELECT DISTINCT status FROM batch_chunks WHERE run_id = %s", (run,)
            ) == [("succeeded",)], where
        # Every plan bought once a day, never twice: one transaction per plan and day.
        assert rows(
            db,
            "SELECT DISTINCT count(*), count(DISTINCT scheduled_date) FROM transactions "
            "WHERE plan_id = ANY(%s) GROUP BY plan_id",
            (ids,),
        ) == [(trials, trials)]
    finally:
        db.close()
    return seen


def test_children_killed_at_random_moments_then_redriven_buy_every_plan_exactly_once(
    cli: Runner,
    db: psycopg2.extensions.connection,
    database_dsn: str,
    aws: AwsStack,
    market: StubMarketServer,
) -> None:
    per_lane = -(-TRIALS // len(LANES))
    with ThreadPoolExecutor(len(LANES)) as pool:
        lanes = [
            pool.submit(run_lane, cli, database_dsn, aws.bucket, mic, per_lane, SEED + number)
            for number, mic in enumerate(LANES)
        ]
        seen = [kill for lane in lanes for kill in lane.result()]

    assert len(seen) == per_lane * len(LANES) >= TRIALS
    # Finalized by the redrive; or, where the timer came after the child had finished,
    # nothing to redrive (the finalizer is Batch's job then).
    assert rows(db, "SELECT DISTINCT status FROM batch_chunks") == [("succeeded",)]
    statuses = dict(rows(db, "SELECT status, count(*) FROM batch_runs GROUP BY 1"))
    assert set(statuses) <= {"succeeded", "submitted"}
    assert sum(statuses.values()) == per_lane * len(LANES)
    # The oracle, through the CLI too.
    verified = cli("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ledger OK" in verified.stdout
    # The seeded schedule really did kill inside, before and between commits, and by timer.
    assert {s.split("@")[0] for s in seen} >= set(FAILPOINTS), seen
    assert any(s.startswith("timer:") for s in seen), seen
