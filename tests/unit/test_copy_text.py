"""The ledger's COPY text (PostgreSQL's text format): values that stay what they were.

In that format a tab ends a column, a newline ends a row, `\\N` is NULL and a
backslash starts an escape. `_text` escapes every free-text column;
symbols, exchanges and currencies go in as they are because a snapshot
cannot hold those characters in them (the last tests here hold that promise).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from common.adapters.marketdata.quotes import Price, PriceFailure
from common.adapters.store.ledger import _STAGE_COLUMNS, Ledger, _opt, _text
from common.domain.calendar import calendar_for
from common.domain.outcomes import Outcome
from common.domain.statuses import Reason
from executor.decisions import decide
from tests.factories import snapshot

QUOTED_AT = datetime(2026, 11, 26, 21, 0, tzinfo=UTC)
COPY_SPECIALS = "\\\t\n\r"
# Free text as the database can store it: anything but NUL (a TEXT column refuses it).
FREE_TEXT = st.text(st.characters(exclude_characters="\x00") | st.sampled_from(COPY_SPECIALS))


def read_copy_field(field: str) -> str | None:
    """A field as PostgreSQL's COPY FROM reads it in text format (the escapes we write, and
    any other escaped character taken as itself)."""
    if field == "\\N":
        return None
    named = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}
    out, chars = [], iter(field)
    for char in chars:
        if char == "\\":
            escaped = next(chars)
            out.append(named.get(escaped, escaped))
        else:
            out.append(char)
    return "".join(out)


def _purchase(**plan: object) -> Outcome:
    return decide(
        snapshot(7, **plan),
        Price(Decimal("190"), "USD", "finnhub", QUOTED_AT),
        None,
        run_date=date(2026, 11, 27),
        share_decimals=6,
        calendar=calendar_for("XNYS"),
    )


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("user-1", "user-1"),
        ("back\\slash", "back\\\\slash"),
        ("a\ttab", "a\\ttab"),
        ("a\nnewline", "a\\nnewline"),
        ("a\rreturn", "a\\rreturn"),
        ("\\N", "\\\\N"),  # the text "\N", not NULL
        ("\\.", "\\\\."),  # not the end-of-data marker
        ("\\t", "\\\\t"),  # a backslash and a t, not a tab
        ("all\\\t\n\r", "all\\\\\\t\\n\\r"),
        ("ünïcödé ✓", "ünïcödé ✓"),
        ("", ""),
    ],
)
def test_free_text_is_escaped_for_copy_so_it_reads_back_as_written(
    value: str, written: str
) -> None:
    assert _text(value) == written
    assert read_copy_field(_text(value)) == value


def test_a_missing_text_is_null() -> None:
    assert _text(None) == "\\N"
    assert read_copy_field(_text(None)) is None


@given(FREE_TEXT)
def test_any_text_stays_in_one_field_and_reads_back_unchanged(value: str) -> None:
    field = _text(value)

    assert not any(c in field for c in "\t\n\r")
    assert read_copy_field(field) == value


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (None, "\\N"),
        (Decimal("100.0000"), "100.0000"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("1E-7"), "1E-7"),  # PostgreSQL's numeric reads exponents
        (Decimal("-2.5"), "-2.5"),
        (7, "7"),
        (date(2026, 12, 28), "2026-12-28"),
        (QUOTED_AT, "2026-11-26 21:00:00+00:00"),
        (
            datetime(2026, 11, 27, 9, 35, 0, 123456, tzinfo=timezone(timedelta(hours=-5))),
            "2026-11-27 09:35:00.123456-05:00",
        ),
    ],
)
def test_numbers_dates_and_times_print_as_postgresql_reads_them(
    value: object, written: str
) -> None:
    assert _opt(value) == written


def test_a_purchase_is_one_line_with_a_field_for_every_staged_column() -> None:
    outcome = _purchase(user_id="user\t1\nwith\\everything\r", fee=Decimal("1.0000"))

    batch = Ledger.prepare([outcome])

    assert batch.size == 1
    assert batch.copy_text.endswith("\n") and batch.copy_text.count("\n") == 1
    fields = dict(zip(_STAGE_COLUMNS, batch.copy_text[:-1].split("\t"), strict=True))
    assert read_copy_field(fields["user_id"]) == "user\t1\nwith\\everything\r"
    assert fields["plan_id"] == "7"
    assert fields["scheduled_date"] == "2026-11-27"
    assert fields["outcome"] == "purchase"
    assert fields["reason"] == "\\N"
    assert (fields["amount"], fields["fee"]) == ("100.0000", "1.0000")
    assert (fields["quantity"], fields["price"], fields["fx_rate"]) == ("0.521052", "190", "1")
    assert fields["cost"] == "99.9999"
    assert fields["price_time"] == "2026-11-26 21:00:00+00:00"
    assert fields["next_run_date"] == "2026-12-28"


def test_a_failure_leaves_every_purchase_column_null() -> None:
    outcome = decide(
        snapshot(8),
        PriceFailure("AAPL", Reason.PROVIDER_ERROR, "down"),
        None,
        run_date=date(2026, 11, 27),
        share_decimals=6,
        calendar=calendar_for("XNYS"),
    )

    line = Ledger.prepare([outcome]).copy_text
    fields = dict(zip(_STAGE_COLUMNS, line[:-1].split("\t"), strict=True))

    assert fields["reason"] == "provider_error"
    purchase_columns = ("quantity", "price", "fx_rate", "cost", "price_source", "price_time")
    assert [fields[c] for c in (*purchase_columns, "next_run_date")] == ["\\N"] * 7


def test_a_batch_is_one_line_per_outcome_in_order() -> None:
    outcomes = [replace(_purchase(), plan_id=i, user_id=f"line\n{i}") for i in (3, 1, 2)]

    text = Ledger.prepare(outcomes).copy_text

    assert [line.split("\t")[0] for line in text.splitlines()] == ["3", "1", "2"]


@pytest.mark.parametrize("special", list(COPY_SPECIALS))
@pytest.mark.parametrize("field", ["symbol", "exchange", "currency", "asset_currency"])
def test_a_snapshot_cannot_carry_a_copy_special_in_a_column_the_ledger_does_not_escape(
    field: str, special: str
) -> None:
    valid = {"symbol": "AAPL", "exchange": "XNYS", "currency": "USD", "asset_currency": "USD"}

    with pytest.raises(ValidationError):
        snapshot(7, **{field: valid[field] + special})
    with pytest.raises(ValidationError):
        snapshot(7, **{field: special + valid[field]})
