"""Job definition revisions: what SubmitJob would run for a name, a revision or an ARN.

SubmitJob's `jobDefinition` "can be one of definition-name, definition-name:revision,
or the Amazon Resource Name (ARN) for the job definition, with or without the
revision ... If the revision is not specified, then the latest active revision
is used" (API_SubmitJob.html). `latest_revision` asks DescribeJobDefinitions
(through common/adapters/batch.py) for that revision's ARN, so a run can be
submitted by it for its whole life.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.adapters.batch import active_definitions, definitions_named
from common.domain.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient


def parse_definition(reference: str) -> tuple[str, int | None]:
    """(name, revision or None) of `name`, `name:revision`, or an ARN with or without one."""
    tail = reference.rsplit("/", 1)[-1] if reference.startswith("arn:") else reference
    name, _, revision = tail.partition(":")
    if revision and not revision.isdigit():
        raise ConfigError({"job definition": f"{reference}: the revision must be a number"})
    return name, int(revision) if revision else None


def latest_revision(batch: BatchClient, reference: str, variable: str) -> str:
    """The ARN, with revision, that SubmitJob would use for `reference` now. Raises
    ConfigError naming `variable` when no ACTIVE revision matches; botocore's errors
    pass through for the caller to translate."""
    name, revision = parse_definition(reference)
    if revision is not None:
        listed = definitions_named(batch, reference)
    else:
        listed = active_definitions(batch, name)
    active = [d for d in listed if d.get("status", "ACTIVE") == "ACTIVE"]
    if not active:
        raise ConfigError({variable: f"no ACTIVE job definition {reference}"})
    latest = max(active, key=lambda d: int(d["revision"]))
    return str(latest["jobDefinitionArn"])
