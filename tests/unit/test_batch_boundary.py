"""One Batch adapter: no shipped module but common/adapters/batch.py calls AWS Batch.

Read from the source (ast), like an import check: a call `x.submit_job(...)`, or a
paginator or waiter asked for by one of Batch's operation names
(`x.get_paginator("list_jobs")`), anywhere in shipped code outside the adapter is a
Batch call that escaped it, with its errors unsorted. The operation names are
botocore's own (the Batch service model), as boto3 spells them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import boto3
import botocore

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("common", "entry", "planner", "executor", "finalizer", "ops")
ADAPTER = "common/adapters/batch.py"
BY_NAME = ("get_paginator", "can_paginate", "get_waiter")


def batch_operations() -> frozenset[str]:
    """Every Batch API method of a boto3 client: submit_job, describe_jobs, list_jobs, ..."""
    model = boto3.client("batch", region_name="us-east-1").meta.service_model
    return frozenset(botocore.xform_name(name) for name in model.operation_names)


def batch_calls(source: str, operations: frozenset[str]) -> list[tuple[int, str]]:
    """(line, what) of each call in `source` that calls a Batch operation by its name."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        method = node.func.attr
        if method in operations:
            found.append((node.lineno, f".{method}(...)"))
        elif method in BY_NAME and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and first.value in operations:
                found.append((node.lineno, f".{method}({first.value!r})"))
    return sorted(found)


def shipped_batch_calls(operations: frozenset[str]) -> dict[str, list[tuple[int, str]]]:
    calls: dict[str, list[tuple[int, str]]] = {}
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            found = batch_calls(path.read_text(encoding="utf-8"), operations)
            if found:
                calls[path.relative_to(ROOT).as_posix()] = found
    return calls


def test_only_the_batch_adapter_calls_aws_batch() -> None:
    calls = shipped_batch_calls(batch_operations())
    assert ADAPTER in calls, "the adapter's own calls are found: the check can see"
    escaped = [
        f"{path}:{line}: {what}"
        for path, found in sorted(calls.items())
        if path != ADAPTER
        for line, what in found
    ]
    assert not escaped, (
        "AWS Batch called outside common/adapters/batch.py (route it through a function "
        "there):\n" + "\n".join(escaped)
    )


def test_the_operation_names_are_botocores() -> None:
    operations = batch_operations()
    assert {"submit_job", "describe_jobs", "list_jobs", "describe_job_queues"} <= operations
    assert {"describe_job_definitions", "describe_compute_environments"} <= operations
    assert "get_log_events" not in operations  # CloudWatch Logs, not Batch


def test_a_batch_call_is_found_by_method_or_by_paginator_name() -> None:
    source = """
def f(batch, logs, s3):
    batch.describe_jobs(jobs=["j"])
    self._batch.submit_job(jobName="n", jobQueue="q", jobDefinition="d")
    pages = batch.get_paginator("list_jobs").paginate(jobQueue="q")
    logs.get_log_events(logGroupName="g", logStreamName="s")
    s3.get_paginator("list_object_versions")
    submit(batch, "n", "q", {})
"""
    assert batch_calls(source, batch_operations()) == [
        (3, ".describe_jobs(...)"),
        (4, ".submit_job(...)"),
        (5, ".get_paginator('list_jobs')"),
    ]
