"""Every status and outcome the batch records, one StrEnum each (docs/design.md sections 5 and 6).

They are `str`s, so they go into SQL parameters, JSON and log lines as their
value; SQL text that must name one builds it from here (common/adapters/store/sql.py),
so Python and SQL cannot drift apart.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """`batch_runs.status`: planning -> manifested -> submitting -> submitted -> final."""

    PLANNING = "planning"
    MANIFESTED = "manifested"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    MARKET_CLOSED = "market_closed"


FINISHED_RUN = frozenset({RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.FAILED})


class ChunkStatus(StrEnum):
    """`batch_chunks.status`, and a chunk result's."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Execution(StrEnum):
    """`plan_executions.status`: what happened to one plan on one scheduled date."""

    PURCHASED = "purchased"
    SKIPPED = "skipped"
    FAILED = "failed"


class Reason(StrEnum):
    """`plan_executions.reason` (an invalid plan's is `invalid_plan: <why>`)."""

    AMOUNT_BELOW_MINIMUM = "amount_below_minimum"  # final: the schedule advanced
    PRICE_UNAVAILABLE = "price_unavailable"  # every provider answered, none usably
    PROVIDER_ERROR = "provider_error"  # a provider did not answer: Batch retries the chunk
    PLAN_CHANGED = "plan_changed"  # edited, paused or cancelled after the snapshot
    INVALID_PLAN = "invalid_plan"  # prefix of "invalid_plan: <why>"


class Decision(StrEnum):
    """What the executor decided for a plan before writing it (executor/decisions.py)."""

    PURCHASE = "purchase"  # -> purchased
    BELOW_MINIMUM = "below_minimum"  # -> skipped / amount_below_minimum, schedule advanced
    FAIL = "fail"  # -> failed / price_unavailable | provider_error, stays due
    INVALID = "invalid"  # -> skipped / invalid_plan: ..., stays due
