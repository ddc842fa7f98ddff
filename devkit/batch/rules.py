"""What AWS Batch checks and decides, as pure functions (no processes, no clock).

Each rule cites the page it comes from:

- SubmitJob: job names "can be up to 128 letters long. The first character must
  be alphanumeric, can contain uppercase and lowercase letters, numbers, hyphens
  (-), and underscores (_)"; an array's size is "between 2 and 10,000"
  (https://docs.aws.amazon.com/batch/latest/userguide/array_jobs.html);
  "a job can depend on up to 20 other jobs"
  (https://docs.aws.amazon.com/batch/latest/userguide/job_dependencies.html);
  variables starting with AWS_BATCH_ are protected: "You can't use this prefix
  for your own variables in job definitions or overrides"
  (https://docs.aws.amazon.com/batch/latest/userguide/job_env_vars.html).
- Retries: a RetryStrategy has 1..10 attempts and "up to 5" EvaluateOnExit
  rules; a rule matches when all of its conditions do; onExitCode, onStatusReason
  and onReason are patterns that "can end with an asterisk (*) so that only the
  start of the string needs to be an exact match"; the first match decides, and
  "if none of the EvaluateOnExit conditions in a RetryStrategy match, then the
  job is retried"
  (https://docs.aws.amazon.com/batch/latest/APIReference/API_EvaluateOnExit.html).
  A job terminated for its timeout "isn't retried"
  (https://docs.aws.amazon.com/batch/latest/userguide/job_timeouts.html).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_DEPENDENCIES = 20
MIN_ARRAY_SIZE, MAX_ARRAY_SIZE = 2, 10_000
MAX_ATTEMPTS = 10
MAX_EXIT_RULES = 5
MIN_TIMEOUT_SECONDS = 60
PROTECTED_PREFIX = "AWS_BATCH_"
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

RETRY = "RETRY"
EXIT = "EXIT"

# The statuses a job moves through; the last two are final.
SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING = (
    "SUBMITTED",
    "PENDING",
    "RUNNABLE",
    "STARTING",
    "RUNNING",
)
SUCCEEDED, FAILED = "SUCCEEDED", "FAILED"
FINAL = frozenset({SUCCEEDED, FAILED})

# What Batch says, in DescribeJobs' statusReason, when...
DEPENDENCY_FAILED = "Dependent Job failed"
CONTAINER_EXITED = "Essential container in task exited"
TIMED_OUT = "Job attempt duration exceeded timeout"
ARRAY_CHILD_FAILED = "Array Child Job failed"


class Refused(Exception):
    """Batch refused the request (a ClientException, HTTP 400): nothing was created."""


@dataclass(frozen=True)
class ExitRule:
    action: str
    on_exit_code: str | None = None
    on_status_reason: str | None = None
    on_reason: str | None = None

    def matches(self, exit_code: int | None, status_reason: str | None, reason: str | None) -> bool:
        """All of the rule's conditions hold (a condition on a missing value does not)."""
        conditions = (
            (self.on_exit_code, None if exit_code is None else str(exit_code)),
            (self.on_status_reason, status_reason),
            (self.on_reason, reason),
        )
        return all(pattern is None or glob_matches(pattern, value) for pattern, value in conditions)


@dataclass(frozen=True)
class RetryStrategy:
    attempts: int = 1
    rules: tuple[ExitRule, ...] = field(default_factory=tuple)

    def action(self, exit_code: int | None, status_reason: str | None, reason: str | None) -> str:
        """RETRY or EXIT for a failed attempt: the first matching rule's, else RETRY."""
        for rule in self.rules:
            if rule.matches(exit_code, status_reason, reason):
                return rule.action
        return RETRY

    def retries(
        self,
        attempt: int,
        exit_code: int | None,
        status_reason: str | None,
        reason: str | None,
    ) -> bool:
        """Whether a failed attempt number `attempt` (1-based) is tried again."""
        if status_reason == TIMED_OUT:
            return False
        return attempt < self.attempts and self.action(exit_code, status_reason, reason) == RETRY


def glob_matches(pattern: str, value: str | None) -> bool:
    """Batch's patterns: exact, or a prefix when the pattern ends with `*`."""
    if value is None:
        return False
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def retry_strategy(document: Mapping[str, Any] | None) -> RetryStrategy:
    """A RetryStrategy from its API form (`attempts`, `evaluateOnExit`), checked."""
    if not document:
        return RetryStrategy()
    attempts = int(document.get("attempts", 1))
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise Refused(f"retryStrategy.attempts must be between 1 and {MAX_ATTEMPTS}")
    rules = document.get("evaluateOnExit") or []
    if len(rules) > MAX_EXIT_RULES:
        raise Refused(f"retryStrategy.evaluateOnExit holds at most {MAX_EXIT_RULES} rules")
    parsed = []
    for rule in rules:
        action = str(rule.get("action", "")).upper()
        if action not in (RETRY, EXIT):
            raise Refused(
                f"evaluateOnExit action must be RETRY or EXIT, not {rule.get('action')!r}"
            )
        code = rule.get("onExitCode")
        if code is not None and not re.fullmatch(r"[0-9]*\*?", code):
            raise Refused(f"onExitCode {code!r}: only numbers, optionally ending with *")
        parsed.append(ExitRule(action, code, rule.get("onStatusReason"), rule.get("onReason")))
    return RetryStrategy(attempts, tuple(parsed))


def check_submission(
    name: str,
    depends_on: Sequence[Mapping[str, Any]],
    array_size: int | None,
    environment: Sequence[Mapping[str, str]],
    timeout_seconds: int | None,
) -> None:
    """Raise `Refused` for a SubmitJob request Batch would refuse."""
    if not JOB_NAME.match(name or ""):
        raise Refused(
            f"jobName {name!r} is invalid: up to 128 letters, numbers, hyphens and "
            "underscores, starting with a letter or number"
        )
    if len(depends_on) > MAX_DEPENDENCIES:
        raise Refused(
            f"a job can depend on at most {MAX_DEPENDENCIES} jobs; this one lists {len(depends_on)}"
        )
    for dependency in depends_on:
        if dependency.get("type") not in (None, ""):
            raise Refused("N_TO_N and SEQUENTIAL dependencies are not used here (emulator)")
    if array_size is not None and not MIN_ARRAY_SIZE <= array_size <= MAX_ARRAY_SIZE:
        raise Refused(
            f"arrayProperties.size must be between {MIN_ARRAY_SIZE} and {MAX_ARRAY_SIZE}, "
            f"not {array_size}"
        )
    for variable in environment:
        if str(variable.get("name", "")).startswith(PROTECTED_PREFIX):
            raise Refused(
                f"environment variable {variable.get('name')}: the prefix "
                f"{PROTECTED_PREFIX} is reserved for AWS Batch"
            )
    if timeout_seconds is not None and timeout_seconds < MIN_TIMEOUT_SECONDS:
        raise Refused(f"timeout.attemptDurationSeconds must be at least {MIN_TIMEOUT_SECONDS}")


def array_status(children: Sequence[str]) -> str:
    """A parent array job's status from its children's (it has no process of its own).

    The parent "can enter a SUBMITTED, PENDING, FAILED, or SUCCEEDED status"
    (array_jobs.html): it ends once every child has ended, FAILED when any failed.
    """
    if children and all(status in FINAL for status in children):
        return SUCCEEDED if all(status == SUCCEEDED for status in children) else FAILED
    return PENDING
