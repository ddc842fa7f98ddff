"""The emulator's engine: jobs, dependencies, array children, attempts and processes.

A job moves SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING ->
SUCCEEDED | FAILED, as AWS Batch documents it
(https://docs.aws.amazon.com/batch/latest/userguide/job_states.html):

- PENDING waits for its dependencies; when one fails the job fails without
  running ("If any of the job dependencies fail, the dependent job
  automatically transitions from PENDING to FAILED", job_dependencies.html).
- RUNNABLE waits for a free slot (the compute environment's capacity).
- An array job is a parent with no process of its own and `size` children
  `<parent id>:<index>`; each child runs, retries and times out on its own
  (the timeout "applies to each child job"), and the parent ends once every
  child has, FAILED when any failed (array_jobs.html). A job that depends on
  the parent waits for the whole array.
- Each attempt is one process: the job definition's command after the
  emulator's entrypoint (the image's ENTRYPOINT), `Ref::name` replaced by the
  job's parameters, with the job definition's environment, the submission's
  overrides and Batch's own variables (job_env_vars.html). A failed attempt is
  retried by the job's RetryStrategy (rules.py). A timed-out attempt gets
  SIGTERM, then SIGKILL 30 seconds later, and is not retried (job_timeouts.html).

Job definitions have revisions: registering a name again adds revision n+1;
a job names one as `name`, `name:revision` or an ARN with or without the
revision, and "if the revision is not specified, then the latest active
revision is used" (API_SubmitJob.html, jobDefinition). A job keeps the
revision it was submitted with, whatever is registered later.

Every status change is a "Batch Job State Change" event, handed to the
EventBridge rules (events.py) after the engine's lock is released.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from devkit.batch import rules
from devkit.batch.rules import (
    FAILED,
    FINAL,
    PENDING,
    RUNNABLE,
    RUNNING,
    STARTING,
    SUBMITTED,
    SUCCEEDED,
    Refused,
    RetryStrategy,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
KILL_AFTER_TERM_SECONDS = 30.0
POLL_SECONDS = 0.02

Event = dict[str, Any]
EventSink = Callable[[Event], None]


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:batch:{REGION}:{ACCOUNT}:{kind}/{name}"


@dataclass(frozen=True)
class JobDefinition:
    """What a job definition holds that the emulator uses."""

    name: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)
    retry: RetryStrategy = field(default_factory=RetryStrategy)
    timeout_seconds: int | None = None
    revision: int = 1

    @property
    def arn(self) -> str:
        return _arn("job-definition", f"{self.name}:{self.revision}")


@dataclass
class Attempt:
    number: int
    started_at: float
    stopped_at: float | None = None
    exit_code: int | None = None
    status_reason: str | None = None
    reason: str | None = None


@dataclass
class Job:
    job_id: str
    name: str
    definition: JobDefinition
    parameters: dict[str, str]
    overrides: dict[str, str]  # containerOverrides.environment
    command: list[str]
    depends_on: list[str]
    retry: RetryStrategy
    timeout_seconds: int | None
    created_at: float
    array_size: int | None = None  # a parent array job
    index: int | None = None  # an array child
    parent_id: str | None = None
    status: str = SUBMITTED
    status_reason: str | None = None
    started_at: float | None = None
    stopped_at: float | None = None
    attempts: list[Attempt] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log: IO[bytes] | None = field(default=None, repr=False)
    terminate_sent_at: float | None = None
    kill_reason: str | None = None

    @property
    def is_parent(self) -> bool:
        return self.array_size is not None

    @property
    def label(self) -> str:
        return self.name if self.index is None else f"{self.name}[{self.index}]"


class BatchEmulator:
    """One job queue on one compute environment with `slots` containers at a time."""

    def __init__(
        self,
        *,
        log_dir: Path,
        slots: int = 2,
        entrypoint: Sequence[str] = (),
        base_env: Mapping[str, str] | None = None,
        queue: str = "worthy-local",
        compute_environment: str = "worthy-local-ce",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.queue_arn = _arn("job-queue", queue)
        self.compute_environment = compute_environment
        self.slots = max(1, slots)
        self.log_dir = log_dir
        self._entrypoint = list(entrypoint)
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._clock = clock
        self._definitions: dict[str, list[JobDefinition]] = {}  # name -> revisions 1, 2, ...
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []  # job ids in submission order
        self._sinks: list[EventSink] = []
        self._events: list[Event] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._dispatching = 0

    # -- set-up ----------------------------------------------------------------------

    def register(self, definition: JobDefinition) -> JobDefinition:
        """RegisterJobDefinition: the definition as the next revision of its name."""
        with self._lock:
            revisions = self._definitions.setdefault(definition.name, [])
            registered = replace(definition, revision=len(revisions) + 1)
            revisions.append(registered)
            return registered

    def definition(self, reference: str) -> JobDefinition:
        """The revision `reference` names (the latest without one), as SubmitJob reads it."""
        with self._lock:
            return self._definition(reference)

    def extend_environment(self, variables: Mapping[str, str]) -> None:
        """Add to the environment every process starts with."""
        with self._lock:
            self._base_env.update(variables)

    def on_event(self, sink: EventSink) -> None:
        """Call `sink` with every state-change event (EventBridge rules subscribe here)."""
        self._sinks.append(sink)

    def start(self) -> BatchEmulator:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="batch-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop scheduling; kill whatever still runs (their jobs fail, as on a lost host)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            for job in self._jobs.values():
                if job.process is not None and job.process.poll() is None:
                    job.process.kill()
                    job.process.wait(timeout=10)
                if job.log is not None:
                    job.log.close()
                    job.log = None

    # -- the API ----------------------------------------------------------------------

    def submit_job(self, request: Mapping[str, Any]) -> dict[str, str]:
        """SubmitJob: the job (and its array children) or `Refused`."""
        name = str(request.get("jobName", ""))
        depends = list(request.get("dependsOn") or [])
        array = request.get("arrayProperties") or {}
        size = array.get("size")
        overrides = request.get("containerOverrides") or {}
        environment = list(overrides.get("environment") or [])
        timeout = (request.get("timeout") or {}).get("attemptDurationSeconds")
        rules.check_submission(name, depends, size, environment, timeout)
        queue = str(request.get("jobQueue", ""))
        if queue not in (self.queue, self.queue_arn):
            raise Refused(f"job queue {queue!r} does not exist")
        with self._lock:
            definition = self._definition(str(request.get("jobDefinition", "")))
            for dependency in depends:
                if dependency.get("jobId") not in self._jobs:
                    raise Refused(f"dependsOn job {dependency.get('jobId')!r} does not exist")
            parameters = {**definition.parameters, **(request.get("parameters") or {})}
            command = list(overrides.get("command") or definition.command)
            retry = (
                rules.retry_strategy(request["retryStrategy"])
                if request.get("retryStrategy")
                else definition.retry
            )
            job = Job(
                job_id=str(uuid.uuid4()),
                name=name,
                definition=definition,
                parameters={k: str(v) for k, v in parameters.items()},
                overrides={str(v["name"]): str(v.get("value", "")) for v in environment},
                command=[parameters.get(a[5:], a) if a.startswith("Ref::") else a for a in command],
                depends_on=[str(d["jobId"]) for d in depends],
                retry=retry,
                timeout_seconds=timeout or definition.timeout_seconds,
                created_at=self._clock(),
                array_size=size,
            )
            self._add(job)
            for index in range(size or 0):
                child = Job(
                    job_id=f"{job.job_id}:{index}",
                    name=name,
                    definition=definition,
                    parameters=job.parameters,
                    overrides=job.overrides,
                    command=job.command,
                    depends_on=[],
                    retry=retry,
                    timeout_seconds=job.timeout_seconds,
                    created_at=job.created_at,
                    index=index,
                    parent_id=job.job_id,
                )
                job.children.append(child.job_id)
                self._add(child)
            self._changed.notify_all()
        return {"jobArn": _arn("job", job.job_id), "jobName": name, "jobId": job.job_id}

    def describe_jobs(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        with self._lock:
            return [self._describe(self._jobs[i]) for i in ids if i in self._jobs]

    def list_jobs(
        self,
        *,
        job_queue: str | None = None,
        array_job_id: str | None = None,
        job_status: str | None = None,
        filters: Sequence[Mapping[str, Any]] = (),
    ) -> list[dict[str, Any]]:
        """ListJobs: by queue and status (default RUNNING), by array parent, or by a filter
        (any status, no array children, newest first; a JOB_NAME value is case-insensitive
        and may end with `*`), as the API reference documents it (API_ListJobs.html)."""
        with self._lock:
            jobs = [self._jobs[i] for i in self._order]
            if array_job_id is not None:
                jobs = [j for j in jobs if j.parent_id == array_job_id]
            elif job_queue not in (self.queue, self.queue_arn):
                raise Refused(f"job queue {job_queue!r} does not exist")
            if filters:
                jobs = [j for j in jobs if j.parent_id is None and _filtered(j, filters)]
                jobs.sort(key=lambda j: j.created_at, reverse=True)
            else:
                wanted = job_status or RUNNING
                jobs = [j for j in jobs if j.status == wanted]
            return [self._summary(j) for j in jobs]

    def terminate_job(self, job_id: str, reason: str) -> None:
        """TerminateJob: stop it wherever it is; it fails with `reason`, without retrying."""
        with self._lock:
            job = self._job(job_id)
            for target in [job, *(self._jobs[c] for c in job.children)]:
                if target.status in FINAL or target.is_parent:
                    continue
                if target.process is not None and target.process.poll() is None:
                    target.kill_reason = reason
                    target.process.kill()
                else:
                    self._set(target, FAILED, reason)
            self._changed.notify_all()

    # -- waiting and looking -----------------------------------------------------------

    def wait(self, timeout: float | None = None, tick: Callable[[], None] | None = None) -> bool:
        """Block until every job (also those rules submit) has ended; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not self._idle():
                if tick is not None:
                    tick()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(timeout=min(0.2, left) if left is not None else 0.2)
        return True

    def jobs(self) -> list[Job]:
        """Every job, parents and children, in submission order (a snapshot)."""
        with self._lock:
            return [self._jobs[i] for i in self._order]

    def job(self, job_id: str) -> Job:
        with self._lock:
            return self._job(job_id)

    # -- scheduling ----------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                self._step()
                events, self._events = self._events, []
                self._dispatching += len(events)
            for event in events:
                for sink in self._sinks:
                    sink(event)
            with self._changed:
                self._dispatching -= len(events)
                self._changed.notify_all()
            time.sleep(POLL_SECONDS)

    def _step(self) -> None:
        now = self._clock()
        running = sum(1 for j in self._jobs.values() if j.status in (STARTING, RUNNING))
        for job_id in self._order:
            job = self._jobs[job_id]
            if job.status in FINAL:
                continue
            if job.is_parent:
                self._settle_parent(job)
                continue
            if job.status == SUBMITTED:
                self._set(job, PENDING)
            if job.status == PENDING:
                self._release(job)
            if job.status == RUNNABLE and running < self.slots:
                self._launch(job, now)
                running += 1
            elif job.status == RUNNING and self._reap(job, now):
                running -= 1

    def _release(self, job: Job) -> None:
        gate = self._jobs[job.parent_id].depends_on if job.parent_id else job.depends_on
        statuses = [self._jobs[d].status for d in gate]
        if FAILED in statuses:
            self._set(job, FAILED, rules.DEPENDENCY_FAILED)
        elif all(s == SUCCEEDED for s in statuses):
            self._set(job, RUNNABLE)

    def _settle_parent(self, job: Job) -> None:
        children = [self._jobs[c] for c in job.children]
        status = rules.array_status([c.status for c in children])
        if job.status == SUBMITTED and any(c.status != SUBMITTED for c in children):
            self._set(job, PENDING)
        if status in FINAL:
            reason = rules.ARRAY_CHILD_FAILED if status == FAILED else None
            if status == FAILED and all(
                c.status_reason == rules.DEPENDENCY_FAILED for c in children
            ):
                reason = rules.DEPENDENCY_FAILED
            self._set(job, status, reason)

    def _launch(self, job: Job, now: float) -> None:
        self._set(job, STARTING)
        attempt = Attempt(number=len(job.attempts) + 1, started_at=now)
        job.attempts.append(attempt)
        job.started_at = job.started_at or now
        job.terminate_sent_at = job.kill_reason = None
        env = {**self._base_env, **job.definition.environment, **job.overrides}
        env.update(self._batch_variables(job, attempt.number))
        path = self.log_dir / f"{job.label}.log"
        job.log = open(path, "ab")  # noqa: SIM115 (closed when the attempt ends)
        job.log.write(f"== {job.label} attempt {attempt.number}\n".encode())
        job.log.flush()
        try:
            job.process = subprocess.Popen(
                [*self._entrypoint, *job.command],
                env=env,
                stdout=job.log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:  # the image's entrypoint is missing: the task never starts
            attempt.stopped_at = now
            attempt.status_reason = f"CannotStartContainerError: {exc}"
            self._end_attempt(job)
            return
        self._set(job, RUNNING)

    def _batch_variables(self, job: Job, attempt: int) -> dict[str, str]:
        variables = {
            "AWS_BATCH_JOB_ID": job.job_id,
            "AWS_BATCH_JOB_ATTEMPT": str(attempt),
            "AWS_BATCH_JQ_NAME": self.queue,
            "AWS_BATCH_CE_NAME": self.compute_environment,
        }
        if job.parent_id is not None:
            variables["AWS_BATCH_JOB_ARRAY_INDEX"] = str(job.index)
            variables["AWS_BATCH_JOB_ARRAY_SIZE"] = str(self._jobs[job.parent_id].array_size)
        return variables

    def _reap(self, job: Job, now: float) -> bool:
        """Check a running attempt; True when it ended."""
        assert job.process is not None
        attempt = job.attempts[-1]
        code = job.process.poll()
        if code is None:
            if job.timeout_seconds and now - attempt.started_at >= job.timeout_seconds:
                if job.terminate_sent_at is None:
                    job.terminate_sent_at = now
                    job.kill_reason = rules.TIMED_OUT
                    job.process.send_signal(signal.SIGTERM)
                elif now - job.terminate_sent_at >= KILL_AFTER_TERM_SECONDS:
                    job.process.kill()
            return False
        attempt.stopped_at = now
        # A container killed by a signal reports 128 + the signal, as Docker does.
        attempt.exit_code = code if code >= 0 else 128 - code
        if job.kill_reason is not None:
            attempt.status_reason = job.kill_reason
        else:
            attempt.status_reason = rules.CONTAINER_EXITED
            if code < 0:
                attempt.reason = f"killed by {signal.Signals(-code).name}"
        self._end_attempt(job)
        return True

    def _end_attempt(self, job: Job) -> None:
        attempt = job.attempts[-1]
        job.process = None
        if job.log is not None:
            job.log.write(
                f"== {job.label} attempt {attempt.number} exited {attempt.exit_code}\n".encode()
            )
            job.log.close()
            job.log = None
        if attempt.exit_code == 0 and job.kill_reason is None:
            self._set(job, SUCCEEDED, attempt.status_reason)
        elif job.kill_reason not in (None, rules.TIMED_OUT):
            self._set(job, FAILED, job.kill_reason)  # terminated: never retried
        elif job.retry.retries(
            attempt.number, attempt.exit_code, attempt.status_reason, attempt.reason
        ):
            self._set(job, RUNNABLE, attempt.status_reason)
        else:
            self._set(job, FAILED, attempt.status_reason)

    # -- bookkeeping ---------------------------------------------------------------------

    def _add(self, job: Job) -> None:
        self._jobs[job.job_id] = job
        self._order.append(job.job_id)
        self._events.append(self._event(job))

    def _set(self, job: Job, status: str, reason: str | None = None) -> None:
        job.status = status
        if reason is not None:
            job.status_reason = reason
        if status in FINAL:
            job.stopped_at = self._clock()
        self._events.append(self._event(job))
        self._changed.notify_all()

    def _idle(self) -> bool:
        return (
            all(j.status in FINAL for j in self._jobs.values())
            and not self._events
            and not self._dispatching
        )

    def _job(self, job_id: str) -> Job:
        if job_id not in self._jobs:
            raise Refused(f"job {job_id!r} does not exist")
        return self._jobs[job_id]

    def _definition(self, reference: str) -> JobDefinition:
        tail = reference.rsplit("/", 1)[-1] if reference.startswith("arn:") else reference
        name, _, revision = tail.partition(":")
        revisions = self._definitions.get(name, [])
        if not revision and revisions:
            return revisions[-1]  # every revision here is ACTIVE: the latest
        if revision.isdigit() and 1 <= int(revision) <= len(revisions):
            return revisions[int(revision) - 1]
        raise Refused(f"job definition {reference!r} does not exist")

    def describe_job_definitions(
        self, references: Sequence[str] = (), name: str | None = None
    ) -> list[dict[str, Any]]:
        """DescribeJobDefinitions: by `name:revision` or ARN, or every revision of `name`."""
        with self._lock:
            if references:
                found = []
                for reference in references:
                    try:
                        found.append(self._definition(reference))
                    except Refused:
                        continue
            elif name is not None:
                found = list(self._definitions.get(name, []))
            else:
                found = [d for revisions in self._definitions.values() for d in revisions]
        return [
            {
                "jobDefinitionName": d.name,
                "jobDefinitionArn": d.arn,
                "revision": d.revision,
                "status": "ACTIVE",
                "type": "container",
                "parameters": dict(d.parameters),
                **({"timeout": {"attemptDurationSeconds": d.timeout_seconds}}
                   if d.timeout_seconds else {}),
            }
            for d in found
        ]  # fmt: skip

    def describe_job_queues(self, queues: Sequence[str] = ()) -> list[dict[str, Any]]:
        """DescribeJobQueues: this emulator's one queue, when asked for it (or for all)."""
        if queues and not {self.queue, self.queue_arn} & set(queues):
            return []
        return [
            {
                "jobQueueName": self.queue,
                "jobQueueArn": self.queue_arn,
                "state": "ENABLED",
                "status": "VALID",
                "priority": 1,
                "computeEnvironmentOrder": [
                    {"order": 1, "computeEnvironment": _arn(
                        "compute-environment", self.compute_environment)}
                ],
            }
        ]  # fmt: skip

    def _event(self, job: Job) -> Event:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Batch Job State Change",
            "source": "aws.batch",
            "account": ACCOUNT,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "region": REGION,
            "resources": [_arn("job", job.job_id)],
            "detail": self._describe(job),
        }

    def _describe(self, job: Job) -> dict[str, Any]:
        environment = {**job.definition.environment, **job.overrides}
        detail: dict[str, Any] = {
            "jobArn": _arn("job", job.job_id),
            "jobName": job.name,
            "jobId": job.job_id,
            "jobQueue": self.queue_arn,
            "status": job.status,
            "attempts": [
                {
                    "container": {
                        k: v
                        for k, v in (("exitCode", a.exit_code), ("reason", a.reason))
                        if v is not None
                    },
                    "startedAt": _ms(a.started_at),
                    **({"stoppedAt": _ms(a.stopped_at)} if a.stopped_at else {}),
                    **({"statusReason": a.status_reason} if a.status_reason else {}),
                }
                for a in job.attempts
            ],
            "createdAt": _ms(job.created_at),
            "dependsOn": [{"jobId": d} for d in job.depends_on],
            "jobDefinition": job.definition.arn,
            "parameters": dict(job.parameters),
            "container": {
                "command": list(job.command),
                "environment": [{"name": k, "value": v} for k, v in environment.items()],
            },
        }
        if job.timeout_seconds:
            detail["timeout"] = {"attemptDurationSeconds": job.timeout_seconds}
        if job.status_reason:
            detail["statusReason"] = job.status_reason
        if job.started_at:
            detail["startedAt"] = _ms(job.started_at)
        if job.stopped_at:
            detail["stoppedAt"] = _ms(job.stopped_at)
        if job.attempts and job.attempts[-1].exit_code is not None:
            detail["container"]["exitCode"] = job.attempts[-1].exit_code
        if job.is_parent:
            summary: dict[str, int] = {}
            for child in job.children:
                status = self._jobs[child].status
                summary[status] = summary.get(status, 0) + 1
            detail["arrayProperties"] = {"size": job.array_size, "statusSummary": summary}
        elif job.index is not None:
            detail["arrayProperties"] = {"index": job.index}
        return detail

    def _summary(self, job: Job) -> dict[str, Any]:
        full = self._describe(job)
        keys = (
            "jobArn",
            "jobId",
            "jobName",
            "createdAt",
            "status",
            "statusReason",
            "startedAt",
            "stoppedAt",
            "arrayProperties",
            "jobDefinition",
        )
        summary = {k: full[k] for k in keys if k in full}
        if "exitCode" in full["container"]:
            summary["container"] = {"exitCode": full["container"]["exitCode"]}
        return summary


def _filtered(job: Job, filters: Sequence[Mapping[str, Any]]) -> bool:
    for item in filters:
        name, values = item.get("name"), list(item.get("values") or [])
        if name == "JOB_NAME":
            if not any(_name_matches(str(v), job.name) for v in values):
                return False
        elif name == "JOB_DEFINITION":
            if not any(
                str(v).split(":")[0].rsplit("/", 1)[-1] == job.definition.name for v in values
            ):
                return False
        else:
            raise Refused(f"ListJobs filter {name!r} is not supported by the emulator")
    return True


def _name_matches(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower(), name.lower()
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


def _ms(seconds: float | None) -> int:
    return int((seconds or 0) * 1000)
