"""Children killed or stopped while holding leased call slots never push the provider past
its limit: a slot leased by a dead child is never used, and one found late is thrown away.

Ten children price one run's ten chunks at once against a stub that refuses
more than 120 calls of the key in any rolling minute, and each is SIGKILLed
at a seeded moment while it prices (holding slots leased ahead). Then ten
more children run the same chunks, two of them SIGSTOPped for a few seconds
and resumed, so that the slots they held come due while they cannot call.
The provider's view (the stub's call log) must show no refusal and no
stretch of calls faster than the limit, and every plan must be bought once.
"""

from __future__ import annotations

import random
import signal
import time
from datetime import date

import psycopg2.extensions

from common.adapters import aws as aws_clients
from common.adapters.manifest_store import ManifestStore
from devkit.stubs.market_server import StubMarketServer
from tests.conftest import AwsStack
from tests.factories import insert_plans, many_plans, scalar
from tests.pacing_checks import JITTER_SECONDS, ahead_of_pace, most_in_a_minute
from tests.reliability.conftest import Child, assert_sound
from tests.runs import child_env, execute_args, plan_day

SEED = 20261214
DAY = date(2026, 11, 27)
PER_MINUTE = 120  # two slots a child at once; 80 symbols take 40 s
# Eight symbols a chunk: no child can be done pricing before the last kill at 6 s (with four,
# a child that started fast was seen to finish first).
SYMBOLS = 80
CHUNKS = 10
STOPPED = (3, 7)  # the children of the second round that are paused
STOP_SECONDS = 3.0


def test_children_killed_or_paused_holding_slots_never_push_the_provider_past_its_limit(
    db: psycopg2.extensions.connection,
    database_dsn: str,
    aws: AwsStack,
    market: StubMarketServer,
) -> None:
    rng = random.Random(SEED)
    insert_plans(db, many_plans(2 * SYMBOLS, symbols=SYMBOLS))
    plan_day(database_dsn, ManifestStore(aws_clients.s3_client()), aws.bucket, DAY, 16)
    assert scalar(db, "SELECT chunk_count FROM batch_runs") == CHUNKS
    market.set_rate_limit("finnhub", PER_MINUTE)
    env = child_env(database_dsn, FINNHUB_CALLS_PER_MINUTE=str(PER_MINUTE))

    # Round 1: every chunk at once, each child killed at a seeded moment while it prices.
    children = [Child(execute_args(DAY, i), env) for i in range(CHUNKS)]
    started = time.monotonic()
    for delay, child in sorted((rng.uniform(2.0, 6.0), c) for c in children):
        time.sleep(max(0.0, started + delay - time.monotonic()))
        child.kill()
    codes = [child.finish()[0] for child in children]
    # They held slots leased ahead of now, which nobody will use...
    held = scalar(db, "SELECT next_slot > now() FROM provider_limits WHERE provider = 'finnhub'")
    priced_then = market.calls("finnhub")
    assert codes.count(-signal.SIGKILL) == CHUNKS, codes
    assert held and 0 < priced_then < SYMBOLS, (held, priced_then)

    # Round 2: the same chunks again; two children stopped for a while holding slots.
    children = [Child(execute_args(DAY, i), env) for i in range(CHUNKS)]
    time.sleep(3.0)
    for index in STOPPED:
        children[index].process.send_signal(signal.SIGSTOP)
    time.sleep(STOP_SECONDS)
    for index in STOPPED:
        children[index].process.send_signal(signal.SIGCONT)
    assert [child.finish(timeout=180)[0] for child in children] == [0] * CHUNKS

    # ...so the provider never saw calls faster than its limit, and refused none.
    arrivals = market.calls_log.times("finnhub")
    assert market.faults_served("finnhub", "http_429") == 0
    assert ahead_of_pace(arrivals, PER_MINUTE) <= JITTER_SECONDS
    assert most_in_a_minute(arrivals) <= PER_MINUTE
    purchased = scalar(db, "SELECT count(*) FROM plan_executions WHERE status = 'purchased'")
    assert purchased == 2 * SYMBOLS
    assert_sound(db, DAY)
