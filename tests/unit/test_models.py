import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from common.domain.models import (
    ChunkRef,
    PlanSnapshot,
    RunManifest,
    closures_of_run,
    snapshot_from_line,
)
from common.domain.run_key import RunKey
from common.domain.validation import InvalidPlan, invalid_plan_reason, plan_problem

LINE: dict[str, Any] = {
    "plan_id": 7,
    "user_id": "user-1",
    "symbol": "AAPL",
    "exchange": "XNYS",
    "asset_currency": "USD",
    "amount": "10000.0000",
    "currency": "JPY",
    "fee": "100.5",
    "fractional": True,
    "frequency": "monthly",
    "start_date": "2026-01-31",
    "scheduled_date": "2026-11-30",
    "version": 3,
}


def test_a_chunk_line_round_trips_exactly_with_amounts_as_strings() -> None:
    plan = PlanSnapshot.model_validate_json(json.dumps(LINE))
    assert plan.amount == Decimal("10000.0000") and plan.fee == Decimal("100.5")
    dumped = json.loads(plan.model_dump_json())
    assert dumped["amount"] == "10000.0000" and dumped["fee"] == "100.5"
    assert PlanSnapshot.model_validate_json(plan.model_dump_json()) == plan


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"amount": 10000.5}, "decimal string"),
        ({"amount": "NaN"}, "finite"),
        ({"amount": "-5"}, "amount must be positive"),
        ({"fee": "10000"}, "fee must be less than amount"),
        ({"plan_id": "7"}, "valid integer"),
        ({"fractional": "yes"}, "valid boolean"),
        ({"currency": "ZZZ"}, "currency\n  Input should be 'AED'"),
        ({"frequency": "hourly"}, "Input should be"),
        ({"symbol": "AAPL'; DROP TABLE assets;--"}, "symbol\n  String should match pattern"),
        ({"exchange": "XXXX"}, "exchange\n  Input should be 'BVMF'"),
        ({"scheduled_date": "30/11/2026"}, "valid date"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
        ({"plan_id": 2**63}, "less than or equal to 9223372036854775807"),
        ({"version": 2**31}, "less than or equal to 2147483647"),
        ({"user_id": "a\x00b"}, "user_id\n  String should match pattern"),
    ],
)
def test_a_chunk_line_with_a_wrong_field_is_rejected(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        PlanSnapshot.model_validate_json(json.dumps({**LINE, **change}))


def test_a_chunk_line_missing_a_field_is_rejected() -> None:
    line = dict(LINE)
    del line["version"]
    with pytest.raises(ValidationError, match="Field required"):
        PlanSnapshot.model_validate_json(json.dumps(line))


def _manifest(**change: Any) -> dict[str, Any]:
    chunk = {
        "index": 0,
        "key": "k/chunks/00000.jsonl.gz",
        "items": 2,
        "symbols": 1,
        "sha256": "a" * 64,
    }
    body: dict[str, Any] = {
        "schema_version": 1,
        "run_id": "XNYS-20261127",
        "market": "XNYS",
        "run_date": "2026-11-27",
        "created_at": "2026-11-27T14:35:00+00:00",
        "item_count": 2,
        "chunk_count": 1,
        "chunks": [chunk],
    }
    body.update(change)
    return body


def test_a_run_manifest_validates_and_checks_itself() -> None:
    manifest = RunManifest.model_validate_json(json.dumps(_manifest()))
    assert manifest.chunks[0] == ChunkRef(
        index=0, key="k/chunks/00000.jsonl.gz", items=2, symbols=1, sha256="a" * 64
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"schema_version": 99}, "Input should be 1"),
        ({"item_count": 3}, "item_count does not match"),
        ({"chunk_count": 2}, "chunk_count does not match"),
        ({"run_id": "XNYS-20261126"}, "run_id does not match"),
        ({"created_at": "2026-11-27T14:35:00"}, "timezone"),
        ({"calendars": {"XXXX": {"first_year": 2026, "last_year": 2026, "days": {}}}}, "XNYS"),
        (
            {
                "calendars": {
                    "XNYS": {"first_year": 2026, "last_year": 2026, "days": {"2027-01-01": "x"}}
                }
            },
            "outside first_year..last_year",
        ),
        ({"calendars": {"XNYS": {"first_year": 2027, "last_year": 2026, "days": {}}}}, "after"),
    ],
)
def test_an_inconsistent_run_manifest_is_rejected(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        RunManifest.model_validate_json(json.dumps(_manifest(**change)))


def test_run_json_carries_the_closures_of_the_run_s_exchanges_around_its_day() -> None:
    calendars = closures_of_run(RunKey("XNYS", date(2026, 11, 27)))
    assert sorted(calendars) == ["XNAS", "XNYS"]
    nyse = calendars["XNYS"]
    assert (nyse.first_year, nyse.last_year) == (2025, 2028)
    assert nyse.days[date(2026, 11, 26)] == "Thanksgiving Day"
    written = json.dumps(
        _manifest(calendars={m: c.model_dump(mode="json") for m, c in calendars.items()})
    )
    read = RunManifest.model_validate_json(written)
    assert read.calendars == calendars
    # A run.json from before the closures were listed still reads: its executors ask the
    # library.
    assert RunManifest.model_validate_json(json.dumps(_manifest())).calendars == {}


ROW: dict[str, Any] = {
    "id": 7,
    "user_id": "user-1",
    "symbol": "AAPL",
    "exchange": "XNYS",
    "asset_currency": "USD",
    "amount": Decimal("100"),
    "currency": "USD",
    "fee": Decimal("0"),
    "fractional": True,
    "frequency": "weekly",
    "start_date": date(2026, 1, 5),
    "next_run_date": date(2026, 11, 30),
    "version": 1,
}


def test_a_valid_row_has_no_problem() -> None:
    assert plan_problem(ROW) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": Decimal("-5")}, "invalid_plan: amount must be positive"),
        ({"amount": Decimal("0")}, "invalid_plan: amount must be positive"),
        ({"amount": None}, "invalid_plan: amount is missing or not a number"),
        ({"fee": Decimal("100")}, "invalid_plan: fee must be less than amount"),
        ({"currency": "ZZZ"}, "invalid_plan: unknown currency 'ZZZ'"),
        ({"asset_currency": "US "}, "invalid_plan: unknown asset currency 'US '"),
        ({"frequency": "hourly"}, "invalid_plan: unknown frequency 'hourly'"),
        ({"symbol": ""}, "invalid_plan: empty symbol"),
        ({"symbol": "AAPL'; DROP TABLE assets;--"}, "invalid_plan: malformed symbol"),
        ({"exchange": "XXXX"}, "invalid_plan: unsupported exchange 'XXXX'"),
        ({"next_run_date": None}, "invalid_plan: next_run_date is missing"),
    ],
)
def test_an_invalid_row_is_an_invalid_plan_with_its_reason(
    change: dict[str, Any], reason: str
) -> None:
    row = {**ROW, **change}
    problem = plan_problem(row)
    assert problem is not None and invalid_plan_reason(problem) == reason


@given(
    st.dictionaries(
        st.sampled_from(sorted(LINE)),
        st.none() | st.integers() | st.text() | st.booleans() | st.floats(allow_nan=True),
    )
)
def test_any_junk_line_is_either_a_valid_snapshot_or_a_validation_error(
    junk: dict[str, Any],
) -> None:
    try:
        plan = PlanSnapshot.model_validate_json(json.dumps({**LINE, **junk}))
    except ValidationError as exc:
        assert exc.error_count() > 0
    else:
        assert plan.amount > plan.fee >= 0


def test_created_at_must_be_aware() -> None:
    assert RunManifest.model_validate_json(json.dumps(_manifest())).created_at == datetime(
        2026, 11, 27, 14, 35, tzinfo=UTC
    )


def _line(**change: Any) -> str:
    return json.dumps({**LINE, **change})


def test_a_valid_line_from_the_database_is_a_snapshot() -> None:
    checked = snapshot_from_line(_line())
    assert isinstance(checked, PlanSnapshot)
    assert checked.amount == Decimal("10000.0000")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": "-5.0000"}, "invalid_plan: amount must be positive"),
        ({"amount": None}, "invalid_plan: amount is missing or not a number"),
        ({"fee": "10000.0000"}, "invalid_plan: fee must be less than amount"),
        ({"currency": "ZZZ"}, "invalid_plan: unknown currency 'ZZZ'"),
        ({"asset_currency": "US "}, "invalid_plan: unknown asset currency 'US '"),
        ({"frequency": "hourly"}, "invalid_plan: unknown frequency 'hourly'"),
        ({"symbol": ""}, "invalid_plan: empty symbol"),
        ({"symbol": None}, "invalid_plan: empty symbol"),
        ({"symbol": "AAPL'; DROP TABLE assets;--"}, "invalid_plan: malformed symbol"),
        ({"exchange": "XXXX"}, "invalid_plan: unsupported exchange 'XXXX'"),
        ({"user_id": None}, "invalid_plan: user_id is missing"),
        (
            {"user_id": "u" * 201},
            "invalid_plan: user_id: String should have at most 200 characters",
        ),
    ],
)
def test_an_invalid_line_names_its_reason_and_keeps_its_scheduled_date(
    change: dict[str, Any], reason: str
) -> None:
    assert snapshot_from_line(_line(**change)) == InvalidPlan(7, reason, date(2026, 11, 30))


@given(
    st.dictionaries(
        st.sampled_from(sorted(set(LINE) - {"plan_id"})),
        st.none() | st.integers() | st.text() | st.booleans(),
    )
)
def test_any_line_the_database_could_write_is_a_snapshot_or_an_invalid_plan(
    junk: dict[str, Any],
) -> None:
    checked = snapshot_from_line(json.dumps({**LINE, **junk}))
    assert isinstance(checked, PlanSnapshot | InvalidPlan)
    if isinstance(checked, InvalidPlan):
        assert checked.reason.startswith("invalid_plan: ")
