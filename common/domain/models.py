"""File formats of docs/design.md section 7, as pydantic models.

Amounts are written as strings and read back exactly; a number where a
string belongs, an unknown field or a wrong type is rejected, because a
manifest that does not match its schema is never bought from.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    model_validator,
)

from common.domain import validation
from common.domain.calendar import (
    SUPPORTED_MICS,
    MarketCalendar,
    exchanges_of_run,
    library_closures,
)
from common.domain.currencies import ISO_4217
from common.domain.run_key import RunKey
from common.domain.schedule import Frequency
from common.domain.statuses import ChunkStatus, Execution

_T = TypeVar("_T")
NO_NUL = "^[^\\x00]*$"

MAX_CHUNKS = 10_000  # AWS Batch array jobs hold 2..10,000 children


def _decimal_from_string(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "10.50"')
    try:
        number = Decimal(value)
    except ArithmeticError:
        raise ValueError("not a decimal number") from None
    if not number.is_finite():
        raise ValueError("must be finite")
    return number


DecimalString = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="always"),
]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
BIGINT_MAX = 2**63 - 1  # plan ids are BIGINT, versions INT, in the app's table
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
Index = Annotated[int, Field(ge=0)]
Count = Annotated[int, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# Checked by pydantic-core itself (no Python call per line): the same rules as
# `validation.check_symbol`, `check_exchange` and `check_currency`.
Symbol = Annotated[str, StringConstraints(pattern=f"^{validation.SYMBOL_PATTERN.pattern}$")]
if TYPE_CHECKING:
    CurrencyCode = str
    Mic = str
else:
    CurrencyCode = Literal[tuple(sorted(ISO_4217))]
    Mic = Literal[tuple(sorted(SUPPORTED_MICS))]


class PlanSnapshot(_Strict):
    """One line of a chunk: a plan as the planner saw it."""

    plan_id: Annotated[int, Field(gt=0, le=BIGINT_MAX)]
    # No NUL: a TEXT column cannot hold one (checked by pydantic-core, like the rest).
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
    symbol: Symbol
    exchange: Mic
    asset_currency: CurrencyCode
    amount: DecimalString
    currency: CurrencyCode
    fee: DecimalString
    fractional: bool
    frequency: Frequency
    start_date: date
    scheduled_date: date
    version: Annotated[int, Field(ge=INT_MIN, le=INT_MAX)]

    @model_validator(mode="after")
    def _money(self) -> PlanSnapshot:
        _ok(None, validation.check_amount(self.amount, self.fee))
        return self


def _ok(value: _T, problem: str | None) -> _T:
    if problem:
        raise ValueError(problem)
    return value


class ChunkRef(_Strict):
    """A chunk as listed in run.json."""

    index: Index
    key: Annotated[str, Field(min_length=1)]
    items: Count
    symbols: Count
    sha256: Sha256


# The years of closures run.json lists around its run date: a yearly plan's next date is at
# most a year and a few closed days later, and the date before it a year earlier.
CLOSURE_YEARS_BEFORE, CLOSURE_YEARS_AFTER = 1, 2


class Closures(_Strict):
    """One exchange's closures over whole years, as the planner's calendar has them:
    run.json's "calendars"."""

    first_year: int
    last_year: int
    days: dict[date, str]

    @model_validator(mode="after")
    def _within_years(self) -> Closures:
        if self.first_year > self.last_year:
            raise ValueError("first_year is after last_year")
        if any(not self.first_year <= d.year <= self.last_year for d in self.days):
            raise ValueError("a closure outside first_year..last_year")
        return self

    def calendar(self, mic: str) -> MarketCalendar:
        return MarketCalendar.from_closures(mic, self.first_year, self.last_year, self.days)


def closures_of_run(key: RunKey) -> dict[str, Closures]:
    """The closures of every exchange in the run's market, around its day."""
    year = key.run_date.year
    first, last = year - CLOSURE_YEARS_BEFORE, year + CLOSURE_YEARS_AFTER
    return {
        mic: Closures(first_year=first, last_year=last, days=library_closures(mic, first, last))
        for mic in exchanges_of_run(key.market)
    }


class RunManifest(_Strict):
    """run.json: the run's identity and the list of its chunks."""

    schema_version: Literal[1]
    run_id: str
    market: str
    run_date: date
    created_at: AwareDatetime
    item_count: Count
    chunk_count: Annotated[int, Field(ge=0, le=MAX_CHUNKS)]
    chunks: list[ChunkRef]
    # The planner's closures of the run's exchanges; empty in a run.json written before
    # they were listed, whose executors ask the library.
    calendars: dict[Mic, Closures] = Field(default_factory=dict)

    @property
    def key(self) -> RunKey:
        return RunKey(self.market, self.run_date)

    @model_validator(mode="after")
    def _consistent(self) -> RunManifest:
        if self.run_id != self.key.run_id:
            raise ValueError("run_id does not match market and run_date")
        if len(self.chunks) != self.chunk_count:
            raise ValueError("chunk_count does not match the chunks listed")
        if [c.index for c in self.chunks] != list(range(self.chunk_count)):
            raise ValueError("chunk indexes must be 0..chunk_count-1 in order")
        if sum(c.items for c in self.chunks) != self.item_count:
            raise ValueError("item_count does not match the chunks' items")
        return self


class Failure(_Strict):
    """A plan the chunk did not buy. `symbol` and `detail` (what the providers said, or why
    the amount buys nothing) are empty in results written before they were recorded."""

    plan_id: int
    status: Literal[Execution.SKIPPED, Execution.FAILED]
    reason: str
    symbol: str = ""
    detail: str = ""


class JobUsage(_Strict):
    """One job's Fargate usage: wall seconds from its process's start to when it wrote its
    result, and the vCPUs and memory it ran with (docs/sizing-and-cost.md "Cost per run")."""

    seconds: DecimalString
    vcpu: DecimalString
    memory_mib: Annotated[int, Field(gt=0)]


class ChunkResult(_Strict):
    """results/<index>.json: what one attempt at one chunk did."""

    schema_version: Literal[1] = 1
    run_id: str
    chunk_index: Index
    attempt: Annotated[int, Field(ge=1)]
    status: Literal[ChunkStatus.SUCCEEDED, ChunkStatus.FAILED]
    started_at: AwareDatetime
    finished_at: AwareDatetime
    duration_ms: Count
    items: Count
    purchased: Count
    skipped: Count
    failed: Count
    reasons: dict[str, Count] = Field(default_factory=dict)
    invested: dict[str, DecimalString] = Field(default_factory=dict)
    api_calls: dict[str, Count] = Field(default_factory=dict)
    quota_exhausted: dict[str, Count] = Field(default_factory=dict)  # provider -> keys skipped
    failures: list[Failure] = Field(default_factory=list)
    timings_ms: dict[str, Count] = Field(default_factory=dict)
    usage: JobUsage | None = None  # this attempt's job; None in results written before it


class RedriveList(_Strict):
    """redrives/<n>.json: the chunks redrive number `redrive` reruns, in array-index order.

    Child `i` of the redrive's array job runs chunk `chunks[i]`. Written once, before
    the job is submitted, and never changed while a job may read it."""

    schema_version: Literal[1] = 1
    run_id: str
    redrive: Annotated[int, Field(ge=1)]
    chunks: Annotated[list[Index], Field(min_length=1, max_length=MAX_CHUNKS)]

    @model_validator(mode="after")
    def _distinct(self) -> RedriveList:
        if len(set(self.chunks)) != len(self.chunks):
            raise ValueError("a chunk is listed twice")
        return self


def snapshot_from_line(line: str | bytes) -> PlanSnapshot | validation.InvalidPlan:
    """A chunk line built from a plan row (by the database), validated: the planner's gate.

    Valid lines take pydantic-core's path only. A line it rejects is read back
    into a row so that `plan_problem` names the reason in the app's terms; the
    schema's own message is the fallback.
    """
    try:
        return PlanSnapshot.model_validate_json(line)
    except ValidationError as exc:
        raw = json.loads(line)
        row = _row_from_line(raw)
        problem = validation.plan_problem(row) or _schema_problem(exc)
        return validation.InvalidPlan(
            raw["plan_id"], validation.invalid_plan_reason(problem), row["next_run_date"]
        )


def _row_from_line(raw: dict[str, Any]) -> dict[str, Any]:
    def number(text: Any) -> Decimal | None:
        try:
            return Decimal(text) if isinstance(text, str) else None
        except ArithmeticError:
            return None

    def day(text: Any) -> date | None:
        try:
            return date.fromisoformat(text) if isinstance(text, str) else None
        except ValueError:
            return None

    return {
        **raw,
        "id": raw.get("plan_id"),
        "amount": number(raw.get("amount")),
        "fee": number(raw.get("fee")),
        "start_date": day(raw.get("start_date")),
        "next_run_date": day(raw.get("scheduled_date")),
    }


def _schema_problem(exc: ValidationError) -> str:
    first = exc.errors(include_input=False, include_url=False)[0]
    field = ".".join(str(p) for p in first["loc"]) or "plan"
    return f"{field}: {first['msg']}"
