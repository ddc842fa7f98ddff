"""`plan --dry-run`: what would be bought, from the same snapshot, writing nothing."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import IO

from psycopg2.extensions import connection

from common.adapters.store.snapshot import Demand, DueQuery, Snapshot
from common.domain.chunking import chunk_the_day
from common.domain.models import snapshot_from_line
from common.domain.statuses import RunStatus
from common.domain.validation import InvalidPlan
from planner.estimate import estimate_run, largest_chunk, timeout_for
from planner.request import PlanRequest
from planner.service import PlanResult

SHOW_SYMBOLS = 50


def preview(connect: Callable[[], connection], request: PlanRequest, out: IO[str]) -> PlanResult:
    key = request.day.key
    run_id = key.run_id
    if closed := request.day.closed:
        message = (
            f"dry run: market {key.market} is closed on {key.run_date} ({closed}); "
            "nothing would run"
        )
        out.write(message + "\n")
        return PlanResult(run_id, RunStatus.MARKET_CLOSED, message)
    plans: Counter[str] = Counter()
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    bases: set[str] = set()
    invalid: Counter[str] = Counter()
    said: list[str] = []  # the children and why, the pricing estimate, a warning if too long
    conn = connect()
    try:
        with Snapshot(conn, DueQuery(key)) as snapshot:
            demand = snapshot.demand()
            estimate = None
            if request.pricing is not None:
                estimate = estimate_run(snapshot, demand, run_id, request.pricing)
            chunking, why = chunk_the_day(
                demand.counts_by_symbol, request.chunking, estimate.seconds if estimate else None
            )
            said.append(why)
            for _, line in snapshot.lines_by_chunk(chunking):
                checked = snapshot_from_line(line)
                if isinstance(checked, InvalidPlan):
                    invalid[checked.reason] += 1
                    continue
                plans[checked.symbol] += 1
                totals[checked.symbol][checked.currency] += checked.amount
                if checked.currency != checked.asset_currency:
                    bases.add(checked.currency)
            if request.pricing is not None:
                # What the children will price: the plans to buy, not the invalid rows.
                wanted = Demand(dict(plans), frozenset(bases))
                estimate = estimate_run(snapshot, wanted, run_id, request.pricing)
                found = timeout_for(
                    estimate, largest_chunk(chunking), request.chunking.cost, request.pricing
                )
                said.append(f"pricing: {estimate}")
                said.append(
                    f"refused: {found.refusal}"
                    if found.refusal
                    else f"executor attempt timeout: {found.seconds} s"
                )
    finally:
        conn.close()
    to_buy, skipped = sum(plans.values()), sum(invalid.values())
    chunks = chunk_the_day(dict(plans), request.chunking)[0].chunks if plans else ()
    out.write(
        f"dry run {run_id}: {to_buy + skipped} plan(s) due, of which {skipped} invalid "
        f"(would be skipped); {to_buy} to buy in {len(plans)} symbol(s), "
        f"{len(chunks)} chunk(s); nothing written\n"
    )
    for line in said:
        out.write(line + "\n")
    out.write(f"{'symbol':<12} {'plans':>7}  amount by currency\n")
    for symbol, count in plans.most_common(SHOW_SYMBOLS):
        money = ", ".join(f"{total:,.2f} {cur}" for cur, total in sorted(totals[symbol].items()))
        out.write(f"{symbol:<12} {count:>7}  {money}\n")
    if len(plans) > SHOW_SYMBOLS:
        out.write(f"... and {len(plans) - SHOW_SYMBOLS} more symbol(s)\n")
    for problem, count in invalid.most_common():
        out.write(f"invalid, would be skipped: {count} x {problem}\n")
    return PlanResult(
        run_id, "dry_run", f"dry run: {to_buy} plan(s) would be bought", to_buy, len(chunks)
    )
