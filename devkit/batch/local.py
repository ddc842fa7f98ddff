"""The stack's AWS Batch on this machine: what `--submitter local` runs children on.

`LocalBatch` starts the emulator with the job definitions and EventBridge
rules of infra/template.yaml, serves Batch's API on loopback, and hands out a
`BatchSubmitter` for it: the same submission code as in AWS, against the same
rules. `graph()` draws what was played, as the Batch console would list it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import boto3
from botocore.config import Config

from devkit.batch.api import BatchApi
from devkit.batch.engine import BatchEmulator, Job, Launcher
from devkit.batch.events import RuleRunner
from devkit.batch.rules import FAILED, SUCCEEDED
from devkit.batch.stack import STACK_NAME, load_stack
from devkit.template import TEMPLATE

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

    from common.adapters.submitters.batch import BatchSubmitter

ENTRYPOINT = (sys.executable, "-m", "entry.cli")  # the image's ENTRYPOINT: worthy-batch
PLANNER = f"{STACK_NAME}-planner"
EXECUTOR = f"{STACK_NAME}-executor"
FINALIZER = f"{STACK_NAME}-finalizer"
ALARM_TOPIC = "arn:aws:sns:us-east-1:123456789012:worthy-batch-alarms"


class LocalBatch:
    def __init__(
        self,
        *,
        log_dir: Path,
        slots: int,
        base_env: Mapping[str, str],
        template: Path = TEMPLATE,
        with_rules: bool = True,
        compute: bool = True,
        launcher: Launcher | None = None,
    ) -> None:
        self._compute = compute  # False: no capacity, every job stays SUBMITTED
        # By default each job is a process of this checkout; a ContainerLauncher
        # (devkit/batch/container.py) runs each as a container of the image instead.
        self.emulator = BatchEmulator(
            log_dir=log_dir,
            slots=slots,
            entrypoint=ENTRYPOINT,
            launcher=launcher,
            base_env=base_env,
        )
        self._api = BatchApi(self.emulator)
        definitions, rules = load_stack(
            {"JobQueue": self.emulator.queue_arn, "AlarmTopic": ALARM_TOPIC}, template
        )
        for definition in definitions:
            self.emulator.register(definition)
        # Without rules: Batch alone (tests of what Batch itself does to jobs).
        self.rules = RuleRunner(
            rules if with_rules else [], self.emulator.queue_arn, self.emulator.submit_job
        )
        self.emulator.on_event(self.rules)
        # A planner run as a job here submits to this same queue, as one in AWS does.
        self.emulator.extend_environment(self.environment())
        # Children see AWS_BATCH_JOB_ID, which makes TLS to the database the default
        # (verify-full, the RDS bundle of the image); the local database has no TLS, so
        # say so explicitly, unless the caller chose a mode for its own server.
        if "DATABASE_SSLMODE" not in base_env:
            self.emulator.extend_environment({"DATABASE_SSLMODE": "disable"})

    @property
    def url(self) -> str:
        return self._api.url

    def environment(self) -> dict[str, str]:
        """What a process needs to submit to this Batch (boto3 reads AWS_ENDPOINT_URL_BATCH)."""
        return {
            "AWS_ENDPOINT_URL_BATCH": self.url,
            "BATCH_JOB_QUEUE": self.emulator.queue_arn,
            "EXECUTOR_JOB_DEFINITION": EXECUTOR,
            "FINALIZER_JOB_DEFINITION": FINALIZER,
            "PLANNER_JOB_DEFINITION": PLANNER,
        }

    def client(self) -> BatchClient:
        client: BatchClient = boto3.session.Session().client(
            "batch",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
        return client

    def submitter(self, own_job_id: str | None = None) -> BatchSubmitter:
        from common.adapters.submitters.batch import BatchSubmitter

        return BatchSubmitter(
            self.client(),
            job_queue=self.emulator.queue_arn,
            executor_definition=EXECUTOR,
            finalizer_definition=FINALIZER,
            own_job_id=own_job_id,
        )

    def __enter__(self) -> Self:
        if self._compute:
            self.emulator.start()
        self._api.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._api.stop()
        self.emulator.stop()

    def graph(self) -> str:
        return render_graph(self.emulator.jobs(), self.rules)


def render_graph(jobs: list[Job], rules: RuleRunner | None = None) -> str:
    """The jobs as Batch would show them: kind, dependencies, final state, attempts."""
    names = {j.job_id: j.name for j in jobs}
    lines = ["job graph (local AWS Batch; job definitions and rules from infra/template.yaml):"]
    for job in (j for j in jobs if j.parent_id is None):
        kind = f"array of {job.array_size}" if job.is_parent else "job"
        after = ", ".join(names.get(d, d) for d in job.depends_on) or "-"
        line = f"  {job.name:<34} {kind:<12} after {after:<34} {job.status}"
        if job.status == FAILED and job.status_reason:
            line += f" ({job.status_reason})"
        if not job.is_parent:
            line += f"; {_attempts(job)}"
        lines.append(line)
        if job.is_parent:
            children = [j for j in jobs if j.parent_id == job.job_id]
            counts: dict[str, int] = {}
            for child in children:
                counts[child.status] = counts.get(child.status, 0) + 1
            summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            lines.append(f"    children: {summary}")
            for child in children:
                if len(child.attempts) > 1 or child.status != SUCCEEDED:
                    lines.append(f"    [{child.index}] {child.status}; {_attempts(child)}")
    for firing in rules.fired if rules else []:
        what = f"submitted {firing.target}" if firing.submitted else f"would notify {firing.target}"
        lines.append(f"  rule {firing.rule}: {firing.job_name} {firing.status} -> {what}")
    for problem in rules.problems if rules else []:
        lines.append(f"  {problem}")
    return "\n".join(lines)


def _attempts(job: Job) -> str:
    codes = ["?" if a.exit_code is None else str(a.exit_code) for a in job.attempts]
    if not codes:
        return "never ran"
    return f"{len(codes)} attempt(s), exit {', '.join(codes)}"
