"""The emulator's pure rules: retry decisions, EventBridge patterns and transformers, and
the stack's own rule that finalizes a run whose executor job failed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from devkit.batch import rules
from devkit.batch.events import RuleRunner, matches, transform
from devkit.batch.local import ALARM_TOPIC
from devkit.batch.stack import event_rules, job_definitions
from devkit.template import load_template

QUEUE_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/worthy-local"
EXECUTOR_ARN = "arn:aws:batch:us-east-1:123456789012:job-definition/worthy-batch-executor:7"


def _event(status: str, definition: str = EXECUTOR_ARN, **detail: Any) -> dict[str, Any]:
    return {
        "source": "aws.batch",
        "detail-type": "Batch Job State Change",
        "detail": {
            "jobName": "worthy-execute-XNYS-20261127",
            "jobId": "j-1",
            "jobQueue": QUEUE_ARN,
            "status": status,
            "jobDefinition": definition,
            "parameters": {"run_id": "XNYS-20261127"},
            **detail,
        },
    }


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("75", 75, True),
        ("75", 750, False),
        ("7*", 750, True),
        ("*", 0, True),
        ("*", None, False),  # a condition on a missing exit code never holds
    ],
)
def test_exit_code_patterns_are_exact_or_prefix(
    pattern: str, value: int | None, expected: bool
) -> None:
    rule = rules.ExitRule("EXIT", on_exit_code=pattern)
    assert rule.matches(value, None, None) is expected


def test_a_rule_holds_only_when_all_its_conditions_do() -> None:
    rule = rules.ExitRule("EXIT", on_exit_code="1", on_status_reason="Essential*")
    assert rule.matches(1, "Essential container in task exited", None)
    assert not rule.matches(1, "Host EC2 terminated", None)
    assert not rule.matches(2, "Essential container in task exited", None)


def test_retry_strategies_refuse_what_batch_refuses() -> None:
    with pytest.raises(rules.Refused, match="between 1 and 10"):
        rules.retry_strategy({"attempts": 11})
    with pytest.raises(rules.Refused, match="at most 5"):
        rules.retry_strategy({"attempts": 2, "evaluateOnExit": [{"action": "EXIT"}] * 6})
    with pytest.raises(rules.Refused, match="only numbers"):
        rules.retry_strategy({"evaluateOnExit": [{"onExitCode": "7?", "action": "EXIT"}]})
    strategy = rules.retry_strategy(
        {"attempts": 2, "evaluateOnExit": [{"onExitCode": "75", "action": "retry"}]}
    )
    assert strategy.retries(1, 75, None, None) and not strategy.retries(2, 75, None, None)


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        ({"a": ["x"]}, {"a": "x"}, True),
        ({"a": ["x"]}, {"a": "y"}, False),
        ({"a": [{"prefix": "ab"}]}, {"a": "abc"}, True),
        ({"a": [{"exists": False}]}, {}, True),
        ({"a": [{"exists": False}]}, {"a": 1}, False),
        ({"a": {"b": [{"exists": False}]}}, {}, True),  # no object, so no field in it
        ({"a": {"b": [{"exists": False}]}}, {"a": {"b": 0}}, False),
        ({"a": [{"anything-but": ["x"]}]}, {"a": "y"}, True),
        ({"a": ["x", "y"]}, {"a": ["z", "y"]}, True),  # an array matches by any element
    ],
)
def test_event_patterns(
    pattern: Mapping[str, Any], event: Mapping[str, Any], expected: bool
) -> None:
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
    assert matches(pattern, event) is expected


def test_the_stack_finalizes_a_run_whose_executor_job_failed() -> None:
    template = load_template()
    submitted: list[Mapping[str, Any]] = []

    def submit(request: Mapping[str, Any]) -> dict[str, str]:
        submitted.append(request)
        return {"jobId": "f-1", "jobName": str(request["jobName"])}

    runner = RuleRunner(
        event_rules(template, {"JobQueue": QUEUE_ARN, "AlarmTopic": ALARM_TOPIC}),
        QUEUE_ARN,
        submit,
    )
    runner(_event("FAILED"))
    runner(_event("FAILED", arrayProperties={"index": 3}))  # a child: its parent fails too
    runner(_event("SUCCEEDED"))
    other = "arn:aws:batch:us-east-1:123456789012:job-definition/worthy-batch-finalizer:1"
    runner(_event("FAILED", definition=other))
    assert submitted == [
        {
            "jobName": "worthy-batch-finalize-after-failure",
            "jobQueue": QUEUE_ARN,
            "jobDefinition": "worthy-batch-finalizer",
            "parameters": {"run_id": "XNYS-20261127"},
        }
    ]
    # The failure alarm still mails: once for the executor, once for its finalizer.
    notified = [f for f in runner.fired if not f.submitted]
    assert {f.target for f in notified} == {ALARM_TOPIC} and len(notified) == 2


def test_input_transformers_insert_json_values() -> None:
    from devkit.batch.events import Target

    target = Target(
        arn="x",
        input_paths={"run": "$.detail.parameters.run_id", "missing": "$.detail.nope"},
        input_template='{"Parameters": {"run_id": <run>, "quoted": "<run>"}, "m": <missing>}',
    )
    assert transform(target, _event("FAILED")) == {
        "Parameters": {"run_id": "XNYS-20261127", "quoted": "XNYS-20261127"},
        "m": None,
    }


def test_the_emulator_plays_the_template_s_job_definitions() -> None:
    definitions = {d.name: d for d in job_definitions(load_template(), {"JobQueue": QUEUE_ARN})}
    executor = definitions["worthy-batch-executor"]
    assert executor.command == ("execute",)
    assert executor.retry.attempts == int(executor.environment["JOB_ATTEMPTS"])
    assert executor.retry.action(75, rules.CONTAINER_EXITED, None) == rules.RETRY
    assert executor.retry.action(65, rules.CONTAINER_EXITED, None) == rules.EXIT
    assert "MANIFEST_BUCKET" not in executor.environment  # an AWS resource: local env supplies it
    assert executor.environment["BATCH_JOB_QUEUE"] == QUEUE_ARN
    finalizer = definitions["worthy-batch-finalizer"]
    assert finalizer.command == ("finalize", "--run-id", "Ref::run_id")
    assert definitions["worthy-batch-planner"].timeout_seconds == 1800
