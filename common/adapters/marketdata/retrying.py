"""Retrying one provider call: exponential backoff with jitter, Retry-After, a bounded budget.

Built on tenacity so the backoff arithmetic is a well-kept library's, with
our two rules on top: a provider's Retry-After wins over the computed wait,
and the budget counts seconds spent waiting between attempts (not the rate
limiter's pacing, which is the provider's pace rather than a failure's cost).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base

from common.adapters.marketdata.limits import Sleep
from common.domain.errors import ProviderUnavailable, Throttled
from common.platform.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BUDGET_SECONDS = 30.0
DEFAULT_INITIAL_BACKOFF = 0.5
DEFAULT_MAX_BACKOFF = 8.0
DEFAULT_JITTER = 0.5


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one provider for one key before moving on."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    budget_seconds: float = DEFAULT_BUDGET_SECONDS  # total backoff sleep across the retries
    initial_backoff: float = DEFAULT_INITIAL_BACKOFF
    max_backoff: float = DEFAULT_MAX_BACKOFF
    jitter: float = DEFAULT_JITTER


class _OverBudget(stop_base):
    """Stop when the next wait would take the total backoff past the budget."""

    def __init__(self, budget_seconds: float) -> None:
        self.budget_seconds = budget_seconds

    def __call__(self, retry_state: RetryCallState) -> bool:
        # tenacity computes the next wait before it asks whether to stop.
        return retry_state.idle_for + retry_state.upcoming_sleep > self.budget_seconds


def call_with_retry(
    attempt: Callable[[], T], *, policy: RetryPolicy, sleep: Sleep, what: str
) -> tuple[T, int]:
    """Run `attempt` until it returns, retrying `ProviderUnavailable` (429, 5xx, timeouts).

    Returns the result and the number of attempts made. When the policy is
    spent the last error is re-raised with `attempts` set; any other error
    (access denied, bad response) is raised at once.
    """
    # initial * 2**(n-1), capped, plus up to `jitter` seconds so that chunks
    # retrying the same provider do not come back in step.
    backoff = wait_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff) + (
        wait_random(0, policy.jitter)
    )

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, Throttled) and error.retry_after is not None:
            return error.retry_after
        return float(backoff(state))

    def announce(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.info(
            "retrying %s in %.2fs after attempt %d: %s",
            what,
            state.upcoming_sleep,
            state.attempt_number,
            error,
        )

    retrying = Retrying(
        retry=retry_if_exception_type(ProviderUnavailable),
        stop=stop_after_attempt(policy.max_attempts) | _OverBudget(policy.budget_seconds),
        wait=wait,
        sleep=sleep,
        before_sleep=announce,
        reraise=True,
    )
    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        return attempt()

    try:
        return retrying(counted), attempts
    except ProviderUnavailable as exc:
        exc.attempts = attempts
        raise
