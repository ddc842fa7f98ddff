"""Read infra/template.yaml as data, for tests that check it without AWS.

The loader and `resolve` live in the dev kit (`devkit.template`), which
the Batch emulator shares; this module adds what only tests ask of a template.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from devkit.template import (
    PSEUDO,
    ROOT,
    TEMPLATE,
    load_template,
    resolve,
    resources_of_type,
)

__all__ = [
    "PSEUDO",
    "ROOT",
    "TEMPLATE",
    "as_list",
    "load_template",
    "policy_documents",
    "resolve",
    "resources_of_type",
    "statements",
]


def policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, document) for every IAM policy document in the template."""
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if "AssumeRolePolicyDocument" in props:
            yield f"{name} trust policy", props["AssumeRolePolicyDocument"]
        for policy in props.get("Policies", []):
            yield f"{name}/{policy['PolicyName']}", policy["PolicyDocument"]
        if "PolicyDocument" in props:
            yield name, props["PolicyDocument"]


def statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement, including both branches of a conditional (`Fn::If`) one."""
    found = document["Statement"]
    for statement in found if isinstance(found, list) else [found]:
        if "Fn::If" in statement:
            _, *branches = statement["Fn::If"]
            yield from (b for b in branches if b != {"Ref": "AWS::NoValue"})
        else:
            yield statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
