"""EventBridge rules of the stack, applied to the emulator's job state changes.

Only what the stack uses, as EventBridge documents it:

- event patterns: a field matches when its value equals one of the listed
  values, or a `{"prefix": ...}`, `{"exists": true|false}` or
  `{"anything-but": ...}` condition holds; nested objects match field by field
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html);
- input transformers: `InputPathsMap` picks values by JSON path (`$.detail.x`),
  and `<name>` in `InputTemplate` is replaced by them (eb-transform-target-input.html);
- Batch job queue targets: the transformed input's `Parameters` become the job's
  parameters ("the EventBridge input transformer passes ... to AWS Batch
  parameters", https://docs.aws.amazon.com/batch/latest/userguide/batch-cwe-target.html),
  `BatchParameters` name the job definition, job name and array size.

Targets of any other kind (an SNS topic) are only recorded, so that the job
graph can say which alarm would have been sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devkit.batch.rules import Refused

SubmitJob = Callable[[Mapping[str, Any]], Mapping[str, str]]


@dataclass(frozen=True)
class Target:
    arn: str
    batch: Mapping[str, Any] | None = None  # BatchParameters, for a job queue target
    input_paths: Mapping[str, str] = field(default_factory=dict)
    input_template: str | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: Mapping[str, Any]
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Firing:
    """One rule that matched one event, and what its target did."""

    rule: str
    job_name: str
    status: str
    target: str  # the job submitted, or the ARN notified
    submitted: bool


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether `event` matches an EventBridge event pattern (the subset above)."""
    for key, wanted in pattern.items():
        present = key in event
        value = event.get(key)
        if isinstance(wanted, Mapping):
            # A missing object holds no fields: {"exists": false} below it matches.
            if not matches(wanted, value if isinstance(value, Mapping) else {}):
                return False
            continue
        if not any(_condition(c, present, value) for c in wanted):
            return False
    return True


def _condition(condition: Any, present: bool, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    if isinstance(condition, Mapping):
        if "exists" in condition:
            return present is bool(condition["exists"])
        if not present:
            return False
        if "prefix" in condition:
            return any(isinstance(v, str) and v.startswith(condition["prefix"]) for v in values)
        if "anything-but" in condition:
            excluded = condition["anything-but"]
            excluded = excluded if isinstance(excluded, list) else [excluded]
            return all(v not in excluded for v in values)
        raise ValueError(f"unsupported pattern condition: {condition}")
    return present and condition in values


def transform(target: Target, event: Mapping[str, Any]) -> Any:
    """The input a target receives: the transformed event, or the whole event."""
    if target.input_template is None:
        return event
    found = {name: _path(event, path) for name, path in target.input_paths.items()}

    def fill(match: re.Match[str]) -> str:
        quoted, name = match.group(1), match.group(2)
        value = found.get(name)
        if quoted:  # "<name>" inside a JSON string: the text itself
            return json.dumps(value if isinstance(value, str) else json.dumps(value))
        return json.dumps(value)

    text = re.sub(r'("?)<([\w.-]+)>\1', fill, target.input_template)
    try:
        return json.loads(text)
    except ValueError:
        return text


def _path(event: Mapping[str, Any], path: str) -> Any:
    node: Any = event
    for part in path.removeprefix("$.").split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


class RuleRunner:
    """Applies rules to each event; a Batch target submits a job through `submit`."""

    def __init__(self, rules: list[Rule], queue_arn: str, submit: SubmitJob) -> None:
        self.rules = rules
        self.fired: list[Firing] = []
        self.problems: list[str] = []
        self._queue_arn = queue_arn
        self._submit = submit

    def __call__(self, event: dict[str, Any]) -> None:
        detail = event.get("detail", {})
        for rule in self.rules:
            if not matches(rule.pattern, event):
                continue
            for target in rule.targets:
                self._fire(rule, target, event, detail)

    def _fire(
        self, rule: Rule, target: Target, event: Mapping[str, Any], detail: Mapping[str, Any]
    ) -> None:
        name, status = str(detail.get("jobName")), str(detail.get("status"))
        if target.batch is None or target.arn != self._queue_arn:
            self.fired.append(Firing(rule.name, name, status, target.arn, submitted=False))
            return
        given = transform(target, event)
        request: dict[str, Any] = {
            "jobName": target.batch["JobName"],
            "jobQueue": target.arn,
            "jobDefinition": target.batch["JobDefinition"],
        }
        size = (target.batch.get("ArrayProperties") or {}).get("Size")
        if size:
            request["arrayProperties"] = {"size": size}
        if isinstance(given, Mapping):
            if given.get("Parameters"):
                request["parameters"] = dict(given["Parameters"])
            if given.get("ContainerOverrides"):
                request["containerOverrides"] = _lower_keys(given["ContainerOverrides"])
        try:
            job = self._submit(request)
        except Refused as exc:
            self.problems.append(f"rule {rule.name}: Batch refused {request['jobName']}: {exc}")
            return
        self.fired.append(Firing(rule.name, name, status, job["jobName"], submitted=True))


def _lower_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k[:1].lower() + k[1:]: _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value
