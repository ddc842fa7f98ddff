"""infra/deploy.sh and infra/smoke-test.sh, run against fake `aws`, `docker` and
`worthy-batch` commands that record their arguments and answer like the real
ones. No AWS account and no Docker engine are involved.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.cfn import ROOT, load_template

DEPLOY = ROOT / "infra" / "deploy.sh"
SMOKE = ROOT / "infra" / "smoke-test.sh"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
FIRST_DEPLOY = [
    "--subnets", "subnet-1,subnet-2",
    "--security-groups", "sg-1",
    "--alarm-email", "ops@example.com",
    "--database-secret-arn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
    "--api-key-secret-arn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-GhIjKl",
]  # fmt: skip
SYSTEM_TOOLS = ("bash", "dirname", "cat", "git", "awk", "sed", "mktemp", "rm", "date", "tr",
                "sleep", "wc")  # fmt: skip

# Each fake appends its argv (shell-quoted) to $FAKE_LOG, then answers; the fake
# `aws` (tests/integration/fake_aws.py) keeps the account's state in $FAKE_STATE.
FAKE_AWS = f"""#!/usr/bin/env bash
exec python {ROOT / "tests" / "integration" / "fake_aws.py"} "$@"
"""
FAKE_DOCKER = f"""#!/usr/bin/env bash
printf 'docker' >>"$FAKE_LOG"; printf ' %q' "$@" >>"$FAKE_LOG"; echo >>"$FAKE_LOG"
[[ $1 != login ]] || [[ $(cat) == secret-token ]]
[[ $1 != push ]] || python {ROOT / "tests" / "integration" / "fake_aws.py"} --pushed "${{2##*:}}"
"""
FAKE_WORTHY_BATCH = r"""#!/usr/bin/env bash
printf 'worthy-batch' >>"$FAKE_LOG"; printf ' %q' "$@" >>"$FAKE_LOG"; echo >>"$FAKE_LOG"
for name in BATCH_JOB_QUEUE PLANNER_JOB_DEFINITION MANIFEST_BUCKET AWS_PROFILE AWS_REGION; do
  echo "$name=${!name:-}" >>"$FAKE_LOG"
done
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]

    def called(self, *prefix: str) -> list[list[str]]:
        """Calls that start with prefix, aws's --profile and --region left out."""
        return [call for call in map(_command, self.calls) if call[: len(prefix)] == list(prefix)]

    @property
    def commands(self) -> list[str]:
        """Each call's first three words, aws's --profile and --region left out."""
        return [" ".join(_command(call)[:3]) for call in self.calls]


def _command(call: list[str]) -> list[str]:
    words = list(call)
    while len(words) > 2 and words[1] in ("--profile", "--region"):
        del words[1:3]
    return words


class Tools:
    """A PATH holding only the system tools the scripts use and the fakes asked for."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "calls.log"
        self.state = tmp_path / "aws-state.json"
        self.env: dict[str, str] = {"DEPLOY_SCAN_POLL_SECONDS": "0"}
        for tool in SYSTEM_TOOLS:
            found = shutil.which(tool)
            assert found, f"{tool} is needed to run the scripts"
            (self.bin / tool).symlink_to(found)
        (self.bin / "python").symlink_to(sys.executable)

    def fake(self, name: str, script: str) -> None:
        path = self.bin / name
        path.write_text(script)
        path.chmod(0o755)

    def run(self, script: Path, *args: str) -> Run:
        self.log.write_text("")
        env = {
            "PATH": str(self.bin),
            "FAKE_LOG": str(self.log),
            "FAKE_STATE": str(self.state),
            "HOME": str(self.bin.parent),
        }
        done = subprocess.run(
            [str(script), *args],
            env=env | self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        calls = [shlex.split(line) for line in self.log.read_text().splitlines() if line]
        return Run(done.returncode, done.stdout, done.stderr, calls)

    def account(self) -> dict[str, Any]:
        """What the fake account holds: the stack's parameters, pushed images, ..."""
        state: dict[str, Any] = json.loads(self.state.read_text())
        return state

    @property
    def sent_template(self) -> str:
        """The template body of the last change set created."""
        return str(self.account()["last_template"])

    def deploys(self) -> list[dict[str, str]]:
        """The parameters of every executed change set, oldest first ("(previous)" where a
        change set kept the stack's value)."""
        return [
            {p["ParameterKey"]: p.get("ParameterValue", "(previous)") for p in change["parameters"]}
            for change in self.account()["executed"]
        ]


@pytest.fixture
def tools(tmp_path: Path) -> Tools:
    found = Tools(tmp_path)
    found.fake("aws", FAKE_AWS)
    found.fake("docker", FAKE_DOCKER)
    found.env["FAKE_REGION"] = REGION
    return found


def one_line_refusal(run: Run) -> str:
    assert run.returncode == 78, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


def test_help_explains_every_option(tools: Tools) -> None:
    run = tools.run(DEPLOY, "--help")
    assert run.returncode == 0
    for option in (
        "--profile", "--region", "--image-tag", "--skip-build", "--subnets",
        "--accept-scan-findings",
    ):  # fmt: skip
        assert option in run.stdout
    assert run.calls == []


def test_a_missing_tool_is_refused_in_one_line(tools: Tools) -> None:
    (tools.bin / "docker").unlink()
    line = one_line_refusal(tools.run(DEPLOY, "--image-tag", "v1", *FIRST_DEPLOY))
    assert line == "deploy.sh: missing tool: docker (install it, or see --help)"


def test_the_first_deploy_names_every_missing_parameter(tools: Tools) -> None:
    line = one_line_refusal(tools.run(DEPLOY, "--image-tag", "v1", "--subnets", "subnet-1"))
    assert "stack worthy-batch does not exist yet" in line
    assert "--security-groups --alarm-email --database-secret-arn --api-key-secret-arn" in line
    assert not [call for call in tools.run(DEPLOY, "--image-tag", "v1").calls if "deploy" in call]


def test_an_unknown_option_or_a_missing_region_is_refused(tools: Tools) -> None:
    assert "unknown option --colour" in one_line_refusal(tools.run(DEPLOY, "--colour", "red"))
    del tools.env["FAKE_REGION"]
    line = one_line_refusal(tools.run(DEPLOY, "--image-tag", "v1", *FIRST_DEPLOY))
    assert "no AWS region" in line


def test_missing_credentials_are_refused_in_one_line(tools: Tools) -> None:
    tools.env["FAKE_NO_CREDENTIALS"] = "1"
    line = one_line_refusal(tools.run(DEPLOY, "--image-tag", "v1", *FIRST_DEPLOY))
    assert line == "deploy.sh: AWS credentials do not work: Unable to locate credentials."


def test_the_first_deploy_builds_creates_the_stack_idle_pushes_scans_then_schedules(
    tools: Tools,
) -> None:
    run = tools.run(DEPLOY, "--image-tag", "abc123", "--max-vcpus", "16", *FIRST_DEPLOY)
    assert run.returncode == 0, run.stderr
    image = f"{REGISTRY}/worthy-batch:abc123"
    order = run.commands
    executes = [i for i, c in enumerate(order) if c == "aws cloudformation execute-change-set"]
    assert len(executes) == 2
    assert order.index("docker build --platform") < executes[0]
    assert executes[0] < order.index(f"docker push {image}") < executes[1]
    scans = [i for i, c in enumerate(order) if c == "aws ecr describe-image-scan-findings"]
    assert executes[0] < scans[0] and scans[-1] < executes[1], "enabled after the scan"
    (build,) = run.called("docker", "build")
    assert build[-1] == str(ROOT) and "linux/amd64" in build
    assert build[build.index("--tag") + 1] == image
    idle, deploy = tools.deploys()
    assert idle["ScheduleState"] == "DISABLED", "nothing runs before the image passed its scan"
    assert deploy["ScheduleState"] == "ENABLED"
    assert deploy["ImageUri"] == image
    assert deploy["SubnetIds"] == "subnet-1,subnet-2", "commas survive (JSON parameters)"
    assert deploy["MaxVcpus"] == "16"
    assert [c["type"] for c in tools.account()["executed"]] == ["CREATE", "UPDATE"]
    (create, *_) = run.called("aws", "cloudformation", "create-change-set")
    assert "CAPABILITY_IAM" in create
    # Every step says what it did; the last line says where the schedules are.
    assert "change set" in run.stdout and "scan COMPLETE" in run.stdout
    assert "schedule PlannerSchedule (worthy-batch-PlannerSchedule-ABC): ENABLED" in run.stdout
    assert run.stdout.strip().splitlines()[-1] == (
        f"deploy.sh: done: worthy-batch runs {image}; schedules ENABLED"
    )


def test_the_template_is_sent_without_comments_and_fits_cloudformations_limit(
    tools: Tools,
) -> None:
    """TemplateBody takes at most 51,200 bytes
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html);
    deploy.sh drops the comment lines, which must not change what the template means."""
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1"}
    run = tools.run(DEPLOY, "--plan", "--image-tag", "abc123")
    assert run.returncode == 0, run.stderr
    (create,) = run.called("aws", "cloudformation", "create-change-set")
    assert create[create.index("--template-body") + 1].startswith("file://")
    sent = tools.sent_template
    assert len(sent.encode()) <= 51_200, len(sent.encode())
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as copy:
        copy.write(sent)
        copy.flush()
        assert load_template(Path(copy.name)) == load_template()


def test_a_template_over_the_limit_goes_through_s3_or_is_refused(
    tools: Tools, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "infra").mkdir(parents=True)
    shutil.copy2(DEPLOY, checkout / "infra" / "deploy.sh")
    pad = "    Type: String\n    Default: " + "x" * 200 + "\n"
    padding = "".join(f"  Pad{i}:\n{pad}" for i in range(250))
    template = (ROOT / "infra" / "template.yaml").read_text()
    (checkout / "infra" / "template.yaml").write_text(
        template.replace("Parameters:\n", "Parameters:\n" + padding, 1)
    )
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1"}
    script = checkout / "infra" / "deploy.sh"
    line = one_line_refusal(tools.run(script, "--plan", "--image-tag", "abc123"))
    assert "over CloudFormation's 51200-byte body limit" in line and "--template-bucket" in line
    run = tools.run(script, "--plan", "--image-tag", "abc123", "--template-bucket", "my-bucket")
    assert run.returncode == 0, run.stderr
    (copy,) = run.called("aws", "s3", "cp")
    assert copy[-1].startswith("s3://my-bucket/worthy-batch/templates/abc123-")
    (create,) = run.called("aws", "cloudformation", "create-change-set")
    url = create[create.index("--template-url") + 1]
    assert url.startswith(f"https://my-bucket.s3.{REGION}.amazonaws.com/worthy-batch/templates/")
    assert "Pad249" in tools.sent_template


def test_an_update_pushes_before_deploying_and_reuses_the_stack_parameters(tools: Tools) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1"}
    run = tools.run(DEPLOY, "--image-tag", "def456")
    assert run.returncode == 0, run.stderr
    order = run.commands
    assert order.index(f"docker push {REGISTRY}/worthy-batch:def456") < order.index(
        "aws cloudformation execute-change-set"
    )
    (deploy,) = tools.deploys()
    assert deploy["ImageUri"] == f"{REGISTRY}/worthy-batch:def456"
    assert deploy["ScheduleState"] == "ENABLED", "stated on every run"
    assert deploy["SubnetIds"] == "(previous)" and deploy["CpuArchitecture"] == "(previous)"
    assert "MaxVcpus" not in deploy, "a parameter the stack never set keeps its default"
    assert order.index("aws ecr describe-image-scan-findings") < order.index(
        "aws cloudformation execute-change-set"
    )


def test_a_rerun_after_a_failed_scan_gate_enables_the_schedules(tools: Tools) -> None:
    """The first deploy stops at the scan gate with the stack up and its schedules off; the
    rerun (nothing given but the tag) must not keep them off and call it done."""
    tools.env["FAKE_HIGH"] = "3"
    stopped = tools.run(DEPLOY, "--image-tag", "abc123", *FIRST_DEPLOY)
    line = one_line_refusal(stopped)
    assert "3 HIGH" in line and "the schedules stay DISABLED until a deploy passes" in line
    assert tools.account()["stack"]["ScheduleState"] == "DISABLED"

    del tools.env["FAKE_HIGH"]
    rerun = tools.run(DEPLOY, "--image-tag", "abc123")
    assert rerun.returncode == 0, rerun.stderr
    assert not rerun.called("docker", "push"), "the image is already there"
    assert tools.deploys()[-1]["ScheduleState"] == "ENABLED"
    assert tools.account()["stack"]["ScheduleState"] == "ENABLED"
    assert "schedules ENABLED" in rerun.stdout.splitlines()[-1]


def test_a_rerun_that_fails_the_scan_again_says_the_schedules_are_still_off(
    tools: Tools,
) -> None:
    tools.env["FAKE_CRITICAL"] = "1"
    one_line_refusal(tools.run(DEPLOY, "--image-tag", "abc123", *FIRST_DEPLOY))
    line = one_line_refusal(tools.run(DEPLOY, "--image-tag", "abc123"))
    assert "1 CRITICAL" in line and "schedules stay DISABLED" in line


def test_schedules_left_disabled_without_being_asked_end_the_deploy_non_zero(
    tools: Tools,
) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1"}
    tools.env["FAKE_SCHEDULE_STATE"] = "DISABLED"  # e.g. switched off by hand in the console
    run = tools.run(DEPLOY, "--image-tag", "abc123")
    assert run.returncode == 1
    (line,) = run.stderr.strip().splitlines()
    assert "PlannerSchedule is DISABLED" in line and "not ENABLED as asked" in line
    assert "done" not in run.stdout


def test_a_schedule_disabled_on_request_is_fine(tools: Tools) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1"}
    run = tools.run(DEPLOY, "--image-tag", "abc123", "--schedule-state", "DISABLED")
    assert run.returncode == 0, run.stderr
    assert tools.deploys()[-1]["ScheduleState"] == "DISABLED"
    assert "schedules DISABLED" in run.stdout.splitlines()[-1]


def test_a_bad_schedule_state_or_architecture_is_refused(tools: Tools) -> None:
    line = one_line_refusal(tools.run(DEPLOY, "--schedule-state", "on"))
    assert "--schedule-state takes ENABLED or DISABLED" in line
    assert "--architecture takes x86_64 or arm64" in one_line_refusal(
        tools.run(DEPLOY, "--architecture", "sparc")
    )


def test_arm64_builds_an_arm64_image_and_runs_the_jobs_on_graviton(tools: Tools) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1"}
    run = tools.run(DEPLOY, "--image-tag", "abc123", "--architecture", "arm64")
    assert run.returncode == 0, run.stderr
    (build,) = run.called("docker", "build")
    assert build[build.index("--platform") + 1] == "linux/arm64"
    assert tools.deploys()[-1]["CpuArchitecture"] == "ARM64"
    # A later deploy that does not say builds for the stack's architecture again.
    again = tools.run(DEPLOY, "--image-tag", "abc124")
    (build,) = again.called("docker", "build")
    assert build[build.index("--platform") + 1] == "linux/arm64"


# ECR's basic scanning ends in COMPLETE; enhanced scanning (Amazon Inspector) in ACTIVE,
# "The scan is complete and the findings are available. Amazon ECR keeps the findings up to
# date": https://docs.aws.amazon.com/AmazonECRPublic/latest/APIReference/API_ImageScanStatus.html
# (valid values of the private registry's status, ACTIVE among them:
# https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageScanStatus.html). Enhanced
# findings come as enhancedFindings with a severity each
# (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageScanFindings.html).
# The waiter `aws ecr wait image-scan-complete` knows COMPLETE only, so deploy.sh polls.
def test_enhanced_scanning_passes_on_active_after_polling(tools: Tools) -> None:
    tools.env |= {
        "FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", "FAKE_SCAN_TYPE": "ENHANCED",
        "FAKE_SCAN_STATUS": "ACTIVE", "FAKE_SCAN_PENDING_POLLS": "2",
    }  # fmt: skip
    run = tools.run(DEPLOY, "--image-tag", "abc123")
    assert run.returncode == 0, run.stderr
    assert "registry scanning: ENHANCED" in run.stdout
    assert "scan ACTIVE: no HIGH or CRITICAL findings" in run.stdout
    assert tools.account()["scan_polls"] == 3
    assert not run.called("aws", "ecr", "wait")
    assert tools.deploys()[-1]["ScheduleState"] == "ENABLED"


def test_enhanced_findings_listed_without_counts_stop_the_deploy(tools: Tools) -> None:
    tools.env |= {
        "FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", "FAKE_SCAN_TYPE": "ENHANCED",
        "FAKE_SCAN_STATUS": "ACTIVE", "FAKE_LISTED_CRITICAL": "2",
    }  # fmt: skip
    line = one_line_refusal(tools.run(DEPLOY, "--image-tag", "abc123"))
    assert "has 2 CRITICAL and 0 HIGH finding(s)" in line
    assert tools.deploys() == []


def test_a_scan_that_never_finishes_stops_at_the_timeout(tools: Tools) -> None:
    tools.env |= {
        "FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", "FAKE_SCAN_PENDING_POLLS": "1000",
        "DEPLOY_SCAN_POLL_SECONDS": "1",
    }  # fmt: skip
    line = one_line_refusal(tools.run(DEPLOY, "--image-tag", "abc123", "--scan-timeout", "1"))
    assert "did not complete: still IN_PROGRESS after 1s" in line
    assert "schedules stay ENABLED" in line


# ECR's basic scanning on push and its findings' severity counts:
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-basic.html
@pytest.mark.parametrize(
    ("findings", "counted"),
    [
        ({"FAKE_HIGH": "2"}, "0 CRITICAL and 2 HIGH"),
        ({"FAKE_CRITICAL": "1"}, "1 CRITICAL and 0 HIGH"),
    ],
)
def test_high_or_critical_findings_stop_the_deploy_unless_accepted(
    tools: Tools, findings: dict[str, str], counted: str
) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", **findings}
    run = tools.run(DEPLOY, "--image-tag", "def456")
    line = one_line_refusal(run)
    assert f"has {counted} finding(s)" in line and "--accept-scan-findings" in line
    assert not run.called("aws", "cloudformation", "execute-change-set")
    accepted = tools.run(DEPLOY, "--image-tag", "def456", "--accept-scan-findings")
    assert accepted.returncode == 0, accepted.stderr
    assert f"warning: {REGISTRY}/worthy-batch:def456 has {counted}" in accepted.stdout
    assert accepted.called("aws", "cloudformation", "execute-change-set")


def test_a_scan_that_fails_stops_the_deploy(tools: Tools) -> None:
    tools.env |= {
        "FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", "FAKE_SCAN_STATUS": "UNSUPPORTED_IMAGE",
        "FAKE_SCAN_DESCRIPTION": "The operating system is not supported",
    }  # fmt: skip
    run = tools.run(DEPLOY, "--image-tag", "def456")
    line = one_line_refusal(run)
    assert "did not complete: UNSUPPORTED_IMAGE: The operating system is not supported" in line
    assert not run.called("aws", "cloudformation", "execute-change-set")


def test_plan_shows_the_change_set_and_changes_nothing(tools: Tools) -> None:
    (tools.bin / "docker").unlink()  # a plan needs no Docker
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1"}
    run = tools.run(DEPLOY, "--plan", "--image-tag", "abc123", "--max-vcpus", "32")
    assert run.returncode == 0, run.stderr
    assert "| Modify | PlannerSchedule |" in run.stdout, "the change set's changes are shown"
    assert "plan only" in run.stdout and "nothing was changed" in run.stdout
    assert run.called("aws", "cloudformation", "delete-change-set")
    assert not run.called("aws", "cloudformation", "execute-change-set")
    assert not run.called("aws", "ecr")
    assert tools.account()["change_sets"] == {}
    assert tools.account()["stack"]["ScheduleState"] == "ENABLED"
    assert tools.deploys() == []


def test_plan_of_a_first_deploy_leaves_no_stack_behind(tools: Tools) -> None:
    run = tools.run(DEPLOY, "--plan", "--image-tag", "abc123", *FIRST_DEPLOY)
    assert run.returncode == 0, run.stderr
    (create,) = run.called("aws", "cloudformation", "create-change-set")
    assert create[create.index("--change-set-type") + 1] == "CREATE"
    assert tools.account()["deleted_stacks"] == ["worthy-batch"], "no REVIEW_IN_PROGRESS stack"
    assert not run.called("docker")


def test_a_deploy_without_changes_still_checks_the_schedules(tools: Tools) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", "FAKE_NO_CHANGES": "1"}
    run = tools.run(DEPLOY, "--image-tag", "abc123")
    assert run.returncode == 0, run.stderr
    assert "no changes" in run.stdout
    assert run.called("aws", "scheduler", "get-schedule")


@pytest.mark.parametrize(
    ("status", "said"),
    [("ROLLBACK_COMPLETE", "delete it"), ("UPDATE_IN_PROGRESS", "wait until it is done")],
)
def test_a_stack_that_cannot_take_a_change_set_is_refused(
    tools: Tools, status: str, said: str
) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", "FAKE_STACK_STATUS": status}
    run = tools.run(DEPLOY, "--image-tag", "abc123")
    line = one_line_refusal(run)
    assert f"is {status}" in line and said in line
    assert not run.called("docker") and not run.called("aws", "cloudformation", "create-change-set")


def test_a_failed_stack_update_is_refused_in_one_line(tools: Tools) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", "FAKE_STACK_FAILS": "1"}
    run = tools.run(DEPLOY, "--image-tag", "abc123")
    assert run.returncode == 78
    assert "did not reach update-complete" in run.stderr.strip().splitlines()[-1]
    assert "done" not in run.stdout


def test_a_roll_back_to_an_image_with_findings_is_stopped_too(tools: Tools) -> None:
    (tools.bin / "docker").unlink()
    tools.env |= {
        "FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", "FAKE_IMAGE_EXISTS": "1",
        "FAKE_CRITICAL": "1",
    }  # fmt: skip
    run = tools.run(DEPLOY, "--skip-build", "--image-tag", "abc123")
    assert "1 CRITICAL" in one_line_refusal(run)
    assert not run.called("aws", "cloudformation", "execute-change-set")


def test_a_roll_back_deploys_an_existing_tag_without_docker(tools: Tools) -> None:
    (tools.bin / "docker").unlink()
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", "FAKE_IMAGE_EXISTS": "1"}
    run = tools.run(DEPLOY, "--skip-build", "--image-tag", "abc123")
    assert run.returncode == 0, run.stderr
    (deploy,) = tools.deploys()
    assert deploy["ImageUri"] == f"{REGISTRY}/worthy-batch:abc123"


def test_rolling_back_to_a_tag_that_was_never_pushed_is_refused(tools: Tools) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1"}
    run = tools.run(DEPLOY, "--skip-build", "--image-tag", "nope")
    assert "is not in the repository" in one_line_refusal(run)
    assert not run.called("aws", "cloudformation", "create-change-set")


def test_profile_and_region_reach_every_aws_call(tools: Tools) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1"}
    run = tools.run(DEPLOY, "--profile", "prod", "--region", "us-east-2", "--image-tag", "t1")
    assert run.returncode == 0, run.stderr
    aws_calls = [call for call in run.calls if call[0] == "aws"]
    assert len(aws_calls) >= 5
    for call in aws_calls:
        assert call[1:5] == ["--profile", "prod", "--region", "us-east-2"], call
    (push,) = run.called("docker", "push")
    assert push[2] == f"{ACCOUNT}.dkr.ecr.us-east-2.amazonaws.com/worthy-batch:t1"


def test_the_image_is_tagged_with_the_commit_of_a_clean_checkout_only(
    tools: Tools, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    for part in ("infra/deploy.sh", "infra/template.yaml", "docker/Dockerfile"):
        (checkout / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / part, checkout / part)
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "release"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1"}
    run = tools.run(checkout / "infra" / "deploy.sh")
    assert run.returncode == 0, run.stderr
    (push,) = run.called("docker", "push")
    assert push[2] == f"{REGISTRY}/worthy-batch:{commit}"

    (checkout / "infra" / "template.yaml").write_text("# edited\n")
    run = tools.run(checkout / "infra" / "deploy.sh")
    assert "uncommitted changes" in one_line_refusal(run)
    assert not run.called("docker")


# ---------------------------------------------------------------------- smoke test


@pytest.fixture
def smoke(tools: Tools) -> Tools:
    tools.fake("worthy-batch", FAKE_WORTHY_BATCH)
    tools.env["FAKE_STACK_EXISTS"] = "1"
    return tools


def test_the_smoke_test_runs_the_canary_on_the_last_saturday_by_default(smoke: Tools) -> None:
    run = smoke.run(SMOKE, "--profile", "prod", "--region", REGION)
    assert run.returncode == 0, run.stderr
    (submit,) = run.called("worthy-batch")
    assert submit[1] == "submit" and "--wait" in submit and "--canary" in submit
    run_date = date.fromisoformat(submit[submit.index("--run-date") + 1])
    assert run_date.weekday() == 5 and 0 <= (date.today() - run_date).days < 7
    log = smoke.log.read_text()
    assert "BATCH_JOB_QUEUE=arn:aws:batch:eu-west-1:123456789012:job-queue/q" in log
    assert "PLANNER_JOB_DEFINITION=worthy-batch-planner" in log
    assert "MANIFEST_BUCKET=runs-bucket" in log
    assert "AWS_PROFILE=prod" in log


def test_the_smoke_test_refuses_a_market_day_unless_told(smoke: Tools) -> None:
    run = smoke.run(SMOKE, "--run-date", "2026-11-27")
    assert "is a weekday" in one_line_refusal(run)
    assert not run.called("worthy-batch")
    run = smoke.run(SMOKE, "--run-date", "2026-11-27", "--allow-market-day")
    assert run.returncode == 0, run.stderr
    (submit,) = run.called("worthy-batch")
    assert submit[submit.index("--run-date") + 1] == "2026-11-27"
    assert "--canary" not in submit, "a market day is planned for real"


def test_the_canary_date_can_be_any_weekend_day(smoke: Tools) -> None:
    run = smoke.run(SMOKE, "--run-date", "2026-11-29", "--timeout", "600")
    assert run.returncode == 0, run.stderr
    (submit,) = run.called("worthy-batch")
    assert submit[1:3] == ["submit", "--canary"]
    assert submit[submit.index("--run-date") + 1] == "2026-11-29"
    assert submit[submit.index("--timeout") + 1] == "600"


def test_the_smoke_test_needs_a_deployed_stack(smoke: Tools) -> None:
    del smoke.env["FAKE_STACK_EXISTS"]
    assert "cannot read the outputs" in one_line_refusal(smoke.run(SMOKE))


def test_make_deploy_and_make_smoke_wrap_the_scripts() -> None:
    def recipe(*args: str) -> list[str]:
        done = subprocess.run(
            ["make", "--no-print-directory", "-n", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip().splitlines()

    assert recipe("deploy", "PLAN=1", "ARGS=--profile prod")[-1].split() == [
        "infra/deploy.sh", "--plan", "--profile", "prod",
    ]  # fmt: skip
    assert recipe("deploy")[-1].split() == ["infra/deploy.sh"]
    assert recipe("smoke", "ARGS=--region eu-west-1")[-1].split() == [
        "infra/smoke-test.sh", "--region", "eu-west-1",
    ]  # fmt: skip


def test_the_scripts_are_executable() -> None:
    assert os.access(DEPLOY, os.X_OK) and os.access(SMOKE, os.X_OK)


def test_every_option_the_docs_use_exists(tools: Tools) -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    readme = "\n".join(page.read_text("utf-8") for page in pages).replace("\\\n", " ")
    for script in (DEPLOY, SMOKE):
        used = set()
        for line in readme.splitlines():
            if f"infra/{script.name}" in line:
                used |= set(re.findall(r"(?<= )--[a-z-]+", line.split(f"infra/{script.name}")[1]))
        assert used, f"the docs show no {script.name} command"
        documented = tools.run(script, "--help").stdout
        assert not {option for option in used if option not in documented}, script.name
