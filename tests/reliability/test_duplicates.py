"""The same chunk started three times at once, several times over: each plan bought once.

AWS Batch can start a child twice (a retry racing a slow first attempt), and
an operator can rerun a chunk that is still running. Each round plans a new
market day, with a seeded number of plans, symbols and write-batch size, and
starts three children on the same chunk index at the same moment.
"""

from __future__ import annotations

import random
from datetime import date

import psycopg2.extensions

from common.adapters import aws as aws_clients
from common.adapters.manifest_store import ManifestStore
from devkit.stubs.market_server import StubMarketServer
from tests.conftest import AwsStack
from tests.factories import insert_plans, many_plans, rows, scalar
from tests.reliability.conftest import Child, assert_sound, market_days
from tests.runs import child_env, execute_args, plan_day

SEED = 3
ROUNDS = 3
DAYS = market_days(date(2026, 11, 2), ROUNDS)


def test_three_children_on_one_chunk_at_once_buy_each_plan_once_round_after_round(
    db: psycopg2.extensions.connection,
    database_dsn: str,
    aws: AwsStack,
    market: StubMarketServer,
) -> None:
    rng = random.Random(SEED)
    store = ManifestStore(aws_clients.s3_client())
    for day in DAYS:
        count, symbols = rng.randint(20, 80), rng.randint(1, 6)
        batch = rng.choice([1, 5, 16, 1000])
        ids = insert_plans(
            db,
            many_plans(count, symbols=symbols, next_run_date=day),
        )
        plan_day(database_dsn, store, aws.bucket, day, chunk_size=500)
        market.reset_calls()

        env = child_env(database_dsn, WRITE_BATCH_SIZE=str(batch))
        children = [Child(execute_args(day, 0), env) for _ in range(3)]
        codes = [child.finish()[0] for child in children]

        assert codes == [0, 0, 0], (day, count, symbols, batch)
        assert_sound(db, day)
        assert scalar(db, "SELECT count(*) FROM transactions WHERE plan_id = ANY(%s)", (ids,)) == (
            count
        )
        assert rows(
            db,
            "SELECT status, count(*) FROM plan_executions WHERE plan_id = ANY(%s) GROUP BY 1",
            (ids,),
        ) == [("purchased", count)]
        assert (
            scalar(
                db, "SELECT attempts FROM batch_chunks WHERE run_id = %s", (f"XNYS-{day:%Y%m%d}",)
            )
            == 3
        )
        # One price call per symbol between the three of them: the run's quotes are shared.
        assert market.calls("finnhub") == symbols
