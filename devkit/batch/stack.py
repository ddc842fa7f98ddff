"""The stack's job definitions and EventBridge rules, read from infra/template.yaml.

The emulator plays what is deployed: the same commands, retry strategies,
timeouts and environment as the job definitions, and the same rules. Values
that only exist in AWS (the bucket's name, a secret) are left out; the local
environment supplies them instead. So are the settings that describe the
outside world the stack talks to, the provider plans (`*_CALLS_PER_*`) and the
database's trust store: locally the providers are a stub with its own limits
and the database is the embedded server.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devkit.batch import rules
from devkit.batch.engine import ContainerSpec, JobDefinition
from devkit.batch.events import Rule, Target
from devkit.template import (
    PSEUDO,
    TEMPLATE,
    is_symbolic,
    load_template,
    resolve,
    resources_of_type,
)

STACK_NAME = PSEUDO["AWS::StackName"]


def _outside_world(name: str) -> bool:
    return "_CALLS_PER_" in name or name == "DATABASE_SSLROOTCERT"


def job_definitions(
    template: Mapping[str, Any], resources: Mapping[str, str] | None = None
) -> list[JobDefinition]:
    found = []
    for props in resources_of_type(dict(template), "AWS::Batch::JobDefinition").values():
        spec = resolve(dict(template), props, resources=resources)
        container = spec["ContainerProperties"]
        environment = {
            str(v["Name"]): str(v["Value"])
            for v in container.get("Environment", [])
            if not is_symbolic(v["Value"]) and not _outside_world(str(v["Name"]))
        }
        retry = spec.get("RetryStrategy") or {}
        found.append(
            JobDefinition(
                name=spec["JobDefinitionName"],
                command=tuple(container["Command"]),
                container=container_spec(container),
                environment=environment,
                parameters={k: str(v) for k, v in (spec.get("Parameters") or {}).items()},
                retry=rules.retry_strategy(
                    {
                        "attempts": retry.get("Attempts", 1),
                        "evaluateOnExit": [
                            {k[:1].lower() + k[1:]: v for k, v in rule.items()}
                            for rule in retry.get("EvaluateOnExit", [])
                        ],
                    }
                ),
                timeout_seconds=(spec.get("Timeout") or {}).get("AttemptDurationSeconds"),
            )
        )
    return found


def container_spec(container: Mapping[str, Any]) -> ContainerSpec:
    """Read-only root, init process, user and scratch mounts of ContainerProperties. A
    volume without a host path lives on the task's own storage (Fargate's bind mount)."""
    on_task = {v["Name"] for v in container.get("Volumes", []) if not v.get("Host")}
    scratch = tuple(
        str(m["ContainerPath"])
        for m in container.get("MountPoints", [])
        if m["SourceVolume"] in on_task and not m.get("ReadOnly", False)
    )
    user = container.get("User")
    return ContainerSpec(
        read_only_root=bool(container.get("ReadonlyRootFilesystem", False)),
        init_process=bool((container.get("LinuxParameters") or {}).get("InitProcessEnabled")),
        user=None if user is None else str(user),
        scratch=scratch,
    )


def event_rules(
    template: Mapping[str, Any], resources: Mapping[str, str] | None = None
) -> list[Rule]:
    found = []
    for name, props in resources_of_type(dict(template), "AWS::Events::Rule").items():
        spec = resolve(dict(template), props, resources=resources)
        if spec.get("State", "ENABLED") != "ENABLED" or "EventPattern" not in spec:
            continue
        targets = []
        for target in spec.get("Targets", []):
            transformer = target.get("InputTransformer") or {}
            targets.append(
                Target(
                    arn=str(target["Arn"]),
                    batch=target.get("BatchParameters"),
                    input_paths=transformer.get("InputPathsMap", {}),
                    input_template=transformer.get("InputTemplate"),
                )
            )
        found.append(Rule(name, spec["EventPattern"], tuple(targets)))
    return found


def load_stack(
    resources: Mapping[str, str], path: Path = TEMPLATE
) -> tuple[list[JobDefinition], list[Rule]]:
    """Job definitions and rules of the template, with `resources` standing in for the
    stack's own resources (e.g. {"JobQueue": the emulator's queue ARN})."""
    template = load_template(path)
    return job_definitions(template, resources), event_rules(template, resources)
