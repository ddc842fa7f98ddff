"""SQL fragments more than one statement of the store needs, built from the domain's enums."""

from __future__ import annotations

from common.domain.statuses import Execution, Reason

# An execution that is final for its (plan, scheduled date): bought, or skipped with an
# amount below the minimum (its schedule advanced). Every other outcome leaves the plan
# due, to be evaluated again (docs/design.md section 6). `e` is plan_executions.
FINAL_OUTCOME = (
    f"(e.status = '{Execution.PURCHASED}' OR (e.status = '{Execution.SKIPPED}' "
    f"AND e.reason = '{Reason.AMOUNT_BELOW_MINIMUM}'))"
)
