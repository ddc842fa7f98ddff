"""Free text through the ledger's COPY into PostgreSQL and back, unchanged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg2.extensions

from common.adapters.db import connect
from common.adapters.marketdata.quotes import Price, Priced, PriceFailure
from common.adapters.store.ledger import Ledger
from common.domain.calendar import calendar_for
from common.domain.outcomes import Outcome
from common.domain.statuses import Decision, Reason
from executor.decisions import decide
from tests.factories import insert_plans, plan, rows, snapshot
from tests.ledger_checks import assert_ledger_consistent

RUN_ID = "XNYS-20261127"
RUN_DATE = date(2026, 11, 27)
QUOTED_AT = datetime(2026, 11, 26, 21, 0, tzinfo=UTC)
HOSTILE = [
    "back\\slash",
    "a\ttab",
    "a\nnewline",
    "a\rreturn",
    "\\N",
    "\\.",
    "\\t escaped, \t real",
    "trailing backslash\\",
    "\r\n\t\\",
    "ünïcödé ✓",
    " padded ",
]


def _decide(plan_id: int, user_id: str, price: Priced) -> Outcome:
    return decide(
        snapshot(plan_id, user_id=user_id),
        price,
        None,
        run_date=RUN_DATE,
        share_decimals=6,
        calendar=calendar_for("XNYS"),
    )


def _apply(dsn: str, outcomes: list[Outcome]) -> None:
    conn = connect(dsn, attempts=1)
    try:
        Ledger(conn, RUN_ID, 0, RUN_DATE).apply(Ledger.prepare(outcomes))
    finally:
        conn.close()


def test_user_ids_and_price_sources_with_copy_specials_are_stored_as_they_were(
    db: psycopg2.extensions.connection, database_dsn: str
) -> None:
    ids = insert_plans(db, [plan(user_id=user_id) for user_id in HOSTILE])
    source = "source\twith\\N and\na line"
    price = Price(Decimal("190"), "USD", source, QUOTED_AT)

    _apply(database_dsn, [_decide(i, u, price) for i, u in zip(ids, HOSTILE, strict=True)])

    assert rows(db, "SELECT status, count(*) FROM plan_executions GROUP BY 1") == [
        ("purchased", len(HOSTILE))
    ]
    assert rows(db, "SELECT plan_id, user_id, price_source FROM transactions ORDER BY plan_id") == [
        (plan_id, user_id, source) for plan_id, user_id in zip(ids, HOSTILE, strict=True)
    ]
    assert sorted(rows(db, "SELECT user_id FROM assets")) == sorted((u,) for u in HOSTILE)
    assert_ledger_consistent(db)


def test_a_reason_with_copy_specials_is_recorded_as_it_was(
    db: psycopg2.extensions.connection, database_dsn: str
) -> None:
    ids = insert_plans(db, [plan(user_id=user_id) for user_id in HOSTILE])
    failure = PriceFailure("AAPL", Reason.PRICE_UNAVAILABLE, "none")
    reasons = [f"invalid_plan: unknown currency {text!r} {text}" for text in HOSTILE]
    outcomes = [
        replace(_decide(i, u, failure), outcome=Decision.INVALID, reason=reason)
        for i, u, reason in zip(ids, HOSTILE, reasons, strict=True)
    ]

    _apply(database_dsn, outcomes)

    assert rows(db, "SELECT plan_id, status, reason FROM plan_executions ORDER BY plan_id") == [
        (plan_id, "skipped", reason) for plan_id, reason in zip(ids, reasons, strict=True)
    ]
    assert rows(db, "SELECT count(*) FROM transactions") == [(0,)]
