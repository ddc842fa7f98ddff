"""The dev kit's AWS Batch emulator against AWS's documented rules, through boto3.

Each rule below cites its page (see also devkit/batch/rules.py). The
emulator is reached over HTTP by a real boto3 client, so a refusal is the
`ClientError` (ClientException) that `BatchSubmitter` sees from AWS, and
each job attempt is a real process.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devkit.batch import rules
from devkit.batch.api import BatchApi
from devkit.batch.engine import BatchEmulator, JobDefinition

QUEUE = "worthy-local"


class Batch:
    """An emulator, its API and a boto3 client; `define` registers `python -c CODE`."""

    def __init__(self, tmp: Path, *, slots: int = 4, clock: Any = None) -> None:
        kwargs = {"clock": clock} if clock else {}
        self.emulator = BatchEmulator(
            log_dir=tmp / "logs",
            slots=slots,
            entrypoint=[sys.executable, "-c"],
            base_env={"PATH": "/usr/bin:/bin", "OUT": str(tmp)},
            **kwargs,
        )
        self.api = BatchApi(self.emulator).start()
        self.client = boto3.client(
            "batch",
            endpoint_url=self.api.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"max_attempts": 1}),
        )

    def define(
        self,
        name: str,
        code: str,
        *,
        attempts: int = 1,
        exit_rules: list[dict[str, str]] | None = None,
        timeout: int | None = None,
    ) -> None:
        retry = rules.retry_strategy({"attempts": attempts, "evaluateOnExit": exit_rules or []})
        self.emulator.register(
            JobDefinition(name=name, command=(code,), retry=retry, timeout_seconds=timeout)
        )

    def submit(self, name: str, definition: str, **request: Any) -> str:
        job: str = self.client.submit_job(
            jobName=name, jobQueue=QUEUE, jobDefinition=definition, **request
        )["jobId"]
        return job

    def run(self, timeout: float = 60) -> None:
        self.emulator.start()
        assert self.emulator.wait(timeout=timeout), "jobs still running"

    def job(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.client.describe_jobs(jobs=[job_id])["jobs"][0]
        return found

    def stop(self) -> None:
        self.api.stop()
        self.emulator.stop()


@pytest.fixture
def batch(tmp_path: Path) -> Iterator[Batch]:
    made = Batch(tmp_path)
    yield made
    made.stop()


def _refused(batch: Batch, **request: Any) -> str:
    with pytest.raises(ClientError) as caught:
        batch.client.submit_job(jobQueue=QUEUE, **request)
    assert caught.value.response["Error"]["Code"] == "ClientException"
    return str(caught.value.response["Error"]["Message"])


# -- SubmitJob's limits (nothing runs: the scheduler is not started) ------------------------


def test_an_array_holds_two_to_ten_thousand_children(batch: Batch) -> None:
    # https://docs.aws.amazon.com/batch/latest/userguide/array_jobs.html: "between 2 and 10,000"
    batch.define("ok", "pass")
    for size in (1, 10_001):
        message = _refused(batch, jobName="a", jobDefinition="ok", arrayProperties={"size": size})
        assert "between 2 and 10000" in message
    for size in (2, 10_000):
        parent = batch.submit(f"a{size}", "ok", arrayProperties={"size": size})
        assert batch.job(parent)["arrayProperties"]["size"] == size
    children = batch.client.list_jobs(arrayJobId=parent, jobStatus="SUBMITTED")["jobSummaryList"]
    assert len(children) == 10_000 and children[-1]["jobId"] == f"{parent}:9999"


def test_a_job_depends_on_at_most_twenty_jobs(batch: Batch) -> None:
    # https://docs.aws.amazon.com/batch/latest/userguide/job_dependencies.html:
    # "Job A can express a dependency on up to 20 other jobs"
    batch.define("ok", "pass")
    ids = [batch.submit(f"dep{i}", "ok") for i in range(21)]
    message = _refused(
        batch, jobName="many", jobDefinition="ok", dependsOn=[{"jobId": i} for i in ids]
    )
    assert "at most 20" in message and "21" in message
    batch.submit("twenty", "ok", dependsOn=[{"jobId": i} for i in ids[:20]])


def test_job_names_and_protected_variables_are_checked(batch: Batch) -> None:
    # SubmitJob jobName: up to 128 letters, numbers, hyphens, underscores; first alphanumeric.
    # job_env_vars.html: "You can't use this prefix [AWS_BATCH_] for your own variables".
    batch.define("ok", "pass")
    for bad in ("-starts-with-hyphen", "has space", "x" * 129, "dot.ted"):
        assert "jobName" in _refused(batch, jobName=bad, jobDefinition="ok")
    batch.submit("A_valid-name_1", "ok")
    batch.submit("x" * 128, "ok")
    message = _refused(
        batch,
        jobName="env",
        jobDefinition="ok",
        containerOverrides={"environment": [{"name": "AWS_BATCH_JOB_ID", "value": "x"}]},
    )
    assert "reserved" in message
    assert "does not exist" in _refused(batch, jobName="x", jobDefinition="nope")


# -- running ------------------------------------------------------------------------------


def test_a_job_whose_dependency_failed_fails_without_running_and_so_do_its_dependents(
    batch: Batch,
) -> None:
    # job_dependencies.html: "If any of the job dependencies fail, the dependent job
    # automatically transitions from PENDING to FAILED."
    batch.define("fail", "raise SystemExit(1)")
    batch.define("ok", "pass")
    first = batch.submit("first", "fail")
    second = batch.submit("second", "ok", dependsOn=[{"jobId": first}])
    third = batch.submit("third", "ok", dependsOn=[{"jobId": second}])
    batch.run()
    assert batch.job(first)["status"] == "FAILED"
    for job_id in (second, third):
        job = batch.job(job_id)
        assert job["status"] == "FAILED"
        assert job["statusReason"] == rules.DEPENDENCY_FAILED
        assert job["attempts"] == []  # never ran


def test_an_array_fails_when_a_child_fails_and_its_dependent_never_runs(
    batch: Batch, tmp_path: Path
) -> None:
    batch.define(
        "child",
        "import os; i = int(os.environ['AWS_BATCH_JOB_ARRAY_INDEX']); raise SystemExit(i == 2)",
    )
    batch.define("after", "open(__import__('os').environ['OUT'] + '/after', 'w')")
    parent = batch.submit("array", "child", arrayProperties={"size": 4})
    after = batch.submit("after", "after", dependsOn=[{"jobId": parent}])
    batch.run()
    job = batch.job(parent)
    assert job["status"] == "FAILED"
    assert job["arrayProperties"]["statusSummary"] == {"SUCCEEDED": 3, "FAILED": 1}
    assert batch.job(after)["status"] == "FAILED"
    assert not (tmp_path / "after").exists()


def test_an_array_succeeds_only_when_every_child_does_and_then_its_dependent_runs(
    batch: Batch, tmp_path: Path
) -> None:
    batch.define("child", "pass")
    batch.define("after", "open(__import__('os').environ['OUT'] + '/after', 'w')")
    parent = batch.submit("array", "child", arrayProperties={"size": 3})
    after = batch.submit("after", "after", dependsOn=[{"jobId": parent}])
    batch.run()
    assert batch.job(parent)["status"] == "SUCCEEDED"
    assert batch.job(after)["status"] == "SUCCEEDED"
    assert (tmp_path / "after").exists()


def test_the_first_matching_exit_rule_decides_with_prefix_globs(batch: Batch) -> None:
    # API_EvaluateOnExit.html: patterns "can end with an asterisk (*) so that only the
    # start of the string needs to be an exact match"; the first match wins.
    exit_rules = [
        {"onExitCode": "65", "action": "EXIT"},
        {"onExitCode": "7*", "action": "RETRY"},
        {"onExitCode": "*", "action": "EXIT"},
    ]
    for code in (65, 75, 70, 1, 17):
        batch.define(f"exit{code}", f"raise SystemExit({code})", attempts=3, exit_rules=exit_rules)
    ids = {code: batch.submit(f"j{code}", f"exit{code}") for code in (65, 75, 70, 1, 17)}
    batch.run()
    tries = {code: len(batch.job(i)["attempts"]) for code, i in ids.items()}
    assert tries == {65: 1, 75: 3, 70: 3, 1: 1, 17: 1}
    assert all(batch.job(i)["status"] == "FAILED" for i in ids.values())


def test_a_failure_no_rule_matches_is_retried_until_attempts_are_spent(batch: Batch) -> None:
    # API_EvaluateOnExit.html: "If none of the EvaluateOnExit conditions in a
    # RetryStrategy match, then the job is retried."
    batch.define(
        "nomatch",
        "raise SystemExit(3)",
        attempts=4,
        exit_rules=[
            {"onExitCode": "75", "action": "EXIT"},
            {"onStatusReason": "Host EC2*", "action": "EXIT"},
        ],
    )
    batch.define(
        "status",
        "raise SystemExit(3)",
        attempts=4,
        exit_rules=[{"onStatusReason": "Essential container*", "action": "EXIT"}],
    )
    retried = batch.submit("nomatch", "nomatch")
    by_reason = batch.submit("status", "status")
    batch.run()
    job = batch.job(retried)
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [3, 3, 3, 3]
    assert job["status"] == "FAILED"
    assert len(batch.job(by_reason)["attempts"]) == 1


def test_a_retried_job_succeeds_on_a_later_attempt(batch: Batch, tmp_path: Path) -> None:
    code = (
        "import os; a = int(os.environ['AWS_BATCH_JOB_ATTEMPT']);"
        "raise SystemExit(0 if a == 3 else 75)"
    )
    batch.define("flaky", code, attempts=3, exit_rules=[{"onExitCode": "75", "action": "RETRY"}])
    job_id = batch.submit("flaky", "flaky")
    batch.run()
    job = batch.job(job_id)
    assert job["status"] == "SUCCEEDED"
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [75, 75, 0]


def test_every_child_gets_batch_variables_and_the_overrides(batch: Batch, tmp_path: Path) -> None:
    # job_env_vars.html: AWS_BATCH_JOB_ARRAY_INDEX (children only), AWS_BATCH_JOB_ARRAY_SIZE,
    # AWS_BATCH_JOB_ATTEMPT (first is 1), AWS_BATCH_JOB_ID, AWS_BATCH_JQ_NAME, AWS_BATCH_CE_NAME.
    code = (
        "import json, os; env = {k: v for k, v in os.environ.items()"
        " if k.startswith(('AWS_BATCH_', 'MANIFEST_URI'))};"
        "open(os.environ['OUT'] + '/env-' + os.environ.get('AWS_BATCH_JOB_ARRAY_INDEX', 'plain'),"
        " 'w').write(json.dumps(env))"
    )
    batch.define("env", code)
    parent = batch.submit(
        "array",
        "env",
        arrayProperties={"size": 3},
        containerOverrides={"environment": [{"name": "MANIFEST_URI", "value": "s3://b/run.json"}]},
    )
    plain = batch.submit("plain", "env")
    batch.run()
    for index in range(3):
        env = json.loads((tmp_path / f"env-{index}").read_text())
        assert env == {
            "AWS_BATCH_JOB_ID": f"{parent}:{index}",
            "AWS_BATCH_JOB_ATTEMPT": "1",
            "AWS_BATCH_JOB_ARRAY_INDEX": str(index),
            "AWS_BATCH_JOB_ARRAY_SIZE": "3",
            "AWS_BATCH_JQ_NAME": QUEUE,
            "AWS_BATCH_CE_NAME": batch.emulator.compute_environment,
            "MANIFEST_URI": "s3://b/run.json",
        }
    env = json.loads((tmp_path / "env-plain").read_text())
    assert env["AWS_BATCH_JOB_ID"] == plain and "AWS_BATCH_JOB_ARRAY_INDEX" not in env


def test_parameters_replace_ref_placeholders_in_the_command(tmp_path: Path) -> None:
    batch = Batch(tmp_path)
    try:
        batch.emulator.register(
            JobDefinition(
                name="echo",
                command=(
                    "import os, sys; open(os.environ['OUT'] + '/arg', 'w').write(sys.argv[1])",
                    "Ref::run_id",
                ),
                parameters={"run_id": "unset"},
            )
        )
        batch.submit("echo", "echo", parameters={"run_id": "XNYS-20261127"})
        batch.run()
    finally:
        batch.stop()
    assert (tmp_path / "arg").read_text() == "XNYS-20261127"


def test_list_jobs_by_name_returns_every_status_newest_first_and_no_children(
    batch: Batch,
) -> None:
    # API_ListJobs.html: with a filter, "jobStatus is ignored", "The filter doesn't apply
    # to child jobs", "sorted by the createdAt field, with the most recent jobs being
    # first"; JOB_NAME is case-insensitive and may end with an asterisk.
    batch.define("fail", "raise SystemExit(1)")
    batch.define("ok", "pass")
    failed = batch.submit("worthy-execute-X", "fail")
    batch.run()
    second = batch.submit("worthy-execute-X-2", "ok", arrayProperties={"size": 2})
    assert batch.emulator.wait(timeout=30)
    found = batch.client.list_jobs(
        jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": ["WORTHY-execute-x*"]}]
    )["jobSummaryList"]
    assert [(j["jobId"], j["status"]) for j in found] == [
        (second, "SUCCEEDED"),
        (failed, "FAILED"),
    ]
    default = batch.client.list_jobs(jobQueue=QUEUE)["jobSummaryList"]
    assert default == []  # without a status or filter: RUNNING jobs only


def test_a_timed_out_attempt_is_terminated_and_not_retried(tmp_path: Path) -> None:
    # job_timeouts.html: SIGTERM when attemptDurationSeconds (>= 60) have passed, SIGKILL
    # 30 s later; "If a job is terminated for exceeding the timeout duration, it isn't
    # retried." The emulator's clock is moved instead of waiting a minute.
    offset = [0.0]
    batch = Batch(tmp_path, clock=lambda: time.time() + offset[0])
    try:
        batch.define("slow", "import time; time.sleep(60)", attempts=3, timeout=60)
        job_id = batch.submit("slow", "slow")
        batch.emulator.start()
        deadline = time.monotonic() + 10
        while batch.job(job_id)["status"] != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.02)
        offset[0] = 61
        assert batch.emulator.wait(timeout=30)
        job = batch.job(job_id)
    finally:
        batch.stop()
    assert job["status"] == "FAILED"
    assert job["statusReason"] == rules.TIMED_OUT
    assert len(job["attempts"]) == 1 and job["attempts"][0]["container"]["exitCode"] == 143


def test_a_timeout_under_sixty_seconds_is_refused(batch: Batch) -> None:
    # job_timeouts.html: attemptDurationSeconds "must be at least 60 seconds"
    batch.define("ok", "pass")
    message = _refused(
        batch, jobName="t", jobDefinition="ok", timeout={"attemptDurationSeconds": 59}
    )
    assert "at least 60" in message


def test_slots_cap_how_many_attempts_run_at_once(tmp_path: Path) -> None:
    batch = Batch(tmp_path, slots=2)
    code = (
        "import os, time; p = os.environ['OUT'] + '/running';"
        "fd = os.open(p + os.environ['AWS_BATCH_JOB_ARRAY_INDEX'], os.O_CREAT);"
        "n = len([f for f in os.listdir(os.environ['OUT']) if f.startswith('running')]);"
        "open(os.environ['OUT'] + '/seen' + os.environ['AWS_BATCH_JOB_ARRAY_INDEX'], 'w')"
        ".write(str(n)); time.sleep(0.3); os.remove(p + os.environ['AWS_BATCH_JOB_ARRAY_INDEX'])"
    )
    try:
        batch.define("busy", code)
        batch.submit("busy", "busy", arrayProperties={"size": 6})
        batch.run()
    finally:
        batch.stop()
    seen = [int((tmp_path / f"seen{i}").read_text()) for i in range(6)]
    assert max(seen) <= 2


def test_the_timeout_submitted_with_a_job_overrides_its_definitions(tmp_path: Path) -> None:
    # job_timeouts.html: attemptDurationSeconds is set "either in your job definition, or
    # when you submit the job"; for an array, "the child jobs have the same timeout
    # configuration as the parent job". The planner submits its estimate's timeout.
    offset = [0.0]
    batch = Batch(tmp_path, clock=lambda: time.time() + offset[0])
    try:
        batch.define("slow", "import time; time.sleep(60)", attempts=3, timeout=3600)
        job_id = batch.submit(
            "slow", "slow", arrayProperties={"size": 2}, timeout={"attemptDurationSeconds": 120}
        )
        assert batch.job(job_id)["timeout"] == {"attemptDurationSeconds": 120}
        assert batch.job(f"{job_id}:1")["timeout"] == {"attemptDurationSeconds": 120}
        batch.emulator.start()
        deadline = time.monotonic() + 10
        while batch.job(f"{job_id}:1")["status"] != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.02)
        offset[0] = 121  # past the submitted 120 s, far from the definition's hour
        assert batch.emulator.wait(timeout=30)
        children = [batch.job(f"{job_id}:{i}") for i in range(2)]
    finally:
        batch.stop()
    assert [c["statusReason"] for c in children] == [rules.TIMED_OUT] * 2
    assert all(len(c["attempts"]) == 1 for c in children), "a timed-out attempt is not retried"


# -- job definition revisions -------------------------------------------------------------


def test_a_name_means_the_latest_revision_and_a_revision_or_arn_means_that_one(
    batch: Batch, tmp_path: Path
) -> None:
    # API_SubmitJob.html, jobDefinition: "definition-name, definition-name:revision, or the
    # Amazon Resource Name (ARN) for the job definition, with or without the revision ...
    # If the revision is not specified, then the latest active revision is used."
    # (docs.aws.amazon.com/batch/latest/APIReference/API_SubmitJob.html)
    batch.define("job", "import os; open(os.environ['OUT'] + '/r1', 'w').close()")
    batch.define("job", "import os; open(os.environ['OUT'] + '/r2', 'w').close()")
    arn = "arn:aws:batch:us-east-1:123456789012:job-definition/job"
    submitted = {
        reference: batch.submit(f"by-{i}", reference)
        for i, reference in enumerate(["job", "job:1", "job:2", f"{arn}:1", arn])
    }
    revisions = {
        reference: batch.job(job_id)["jobDefinition"].rsplit(":", 1)[1]
        for reference, job_id in submitted.items()
    }
    assert revisions == {"job": "2", "job:1": "1", "job:2": "2", f"{arn}:1": "1", arn: "2"}
    assert "does not exist" in _refused(batch, jobName="x", jobDefinition="job:3")

    described = batch.client.describe_job_definitions(jobDefinitionName="job", status="ACTIVE")
    assert sorted(d["revision"] for d in described["jobDefinitions"]) == [1, 2]
    one = batch.client.describe_job_definitions(jobDefinitions=["job:1"])["jobDefinitions"]
    assert [d["jobDefinitionArn"] for d in one] == [f"{arn}:1"]
    queues = batch.client.describe_job_queues(jobQueues=[QUEUE])["jobQueues"]
    assert [(q["jobQueueName"], q["state"]) for q in queues] == [(QUEUE, "ENABLED")]
    assert batch.client.describe_job_queues(jobQueues=["other"])["jobQueues"] == []


def test_a_job_keeps_the_revision_it_was_submitted_with(batch: Batch, tmp_path: Path) -> None:
    batch.define("job", "import os; open(os.environ['OUT'] + '/r1', 'w').close()")
    job_id = batch.submit("early", "job")
    batch.define("job", "raise SystemExit(65)")  # the next release, registered before it runs
    batch.run()
    assert batch.job(job_id)["status"] == "SUCCEEDED"
    assert (tmp_path / "r1").exists()
