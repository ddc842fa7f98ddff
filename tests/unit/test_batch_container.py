"""The emulator's container mode: each job started as its job definition in the template says.

`make image-test` runs it for real (podman, the built image); this is what the
argv must say, checked without an engine.
"""

from __future__ import annotations

import re

import pytest

from devkit.batch.container import ContainerLauncher, container_name
from devkit.batch.engine import Job, JobDefinition
from devkit.batch.rules import RetryStrategy
from devkit.batch.stack import job_definitions
from devkit.template import load_template

QUEUE_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/worthy-local"


@pytest.fixture(scope="module")
def definitions() -> dict[str, JobDefinition]:
    return {d.name: d for d in job_definitions(load_template(), {"JobQueue": QUEUE_ARN})}


def child(definition: JobDefinition) -> Job:
    return Job(
        job_id="0f3c2a8e-5d1b-4c1e-9a77-2b7f1c9d0e11:3",
        name="worthy-execute-XNYS-20261204",
        definition=definition,
        parameters={},
        overrides={},
        command=list(definition.command),
        depends_on=[],
        retry=RetryStrategy(),
        timeout_seconds=None,
        created_at=0.0,
        index=3,
        parent_id="0f3c2a8e-5d1b-4c1e-9a77-2b7f1c9d0e11",
    )


def test_every_job_definition_starts_read_only_with_an_init_and_a_tmp_scratch_volume(
    definitions: dict[str, JobDefinition],
) -> None:
    assert len(definitions) == 4  # planner, executor, finalizer, watchdog
    for definition in definitions.values():
        spec = definition.container
        assert spec.read_only_root, definition.name
        assert spec.init_process, definition.name
        assert spec.scratch == ("/tmp",), definition.name
        assert spec.user is None, "no User: the image's USER (10001) applies"


def test_a_child_runs_as_its_definition_says_with_values_kept_out_of_the_argv(
    definitions: dict[str, JobDefinition],
) -> None:
    launcher = ContainerLauncher("localhost/worthy-batch:test", host_env={"PATH": "/usr/bin"})
    job = child(definitions["worthy-batch-executor"])
    secret = "postgresql://worthy:hunter2@127.0.0.1:5432/worthy"
    argv, env = launcher.command(job, 2, {"DATABASE_URL": secret, "AWS_BATCH_JOB_ARRAY_INDEX": "3"})
    image = argv.index("localhost/worthy-batch:test")
    assert argv[image + 1 :] == ["execute"], "the image's ENTRYPOINT, the definition's command"
    options = argv[:image]
    assert options[options.index("run") :][:2] == ["run", "--rm"]
    for flag in ("--read-only", "--read-only-tmpfs=false", "--init"):
        assert flag in options
    assert options[options.index("--mount") + 1] == "type=volume,dst=/tmp"
    assert options[options.index("--network") + 1] == "host"
    assert "--user" not in options and "--entrypoint" not in options
    named = [options[i + 1] for i, o in enumerate(options) if o == "--env"]
    assert named == ["AWS_BATCH_JOB_ARRAY_INDEX", "DATABASE_URL"]
    assert not any(secret in a for a in argv), "a value in argv is in every `ps`"
    assert env == {"PATH": "/usr/bin", "DATABASE_URL": secret, "AWS_BATCH_JOB_ARRAY_INDEX": "3"}


def test_each_attempt_is_a_container_of_its_own_with_a_name_podman_accepts(
    definitions: dict[str, JobDefinition],
) -> None:
    job = child(definitions["worthy-batch-executor"])
    first, second = container_name(job, 1), container_name(job, 2)
    assert first != second
    for name in (first, second):
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name), name


def test_an_entrypoint_override_replaces_the_image_s() -> None:
    launcher = ContainerLauncher("img", host_env={}, entrypoint=["python", "-c", "print(1)"])
    definition = JobDefinition(name="worthy-batch-planner", command=("plan",))
    argv, _ = launcher.command(child(definition), 1, {})
    assert argv[argv.index("--entrypoint") + 1] == '["python", "-c", "print(1)"]'
    assert argv[-2:] == ["img", "plan"]
