"""infra/deploy.sh and infra/smoke-test.sh, run against fake `aws`, `docker` and
`worthy-batch` commands that record their arguments and answer like the real
ones. No AWS account and no Docker engine are involved.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from tests.cfn import ROOT

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
SYSTEM_TOOLS = ("bash", "dirname", "cat", "git", "awk")

# Each fake appends its argv (shell-quoted) to $FAKE_LOG, then answers.
FAKE_AWS = r"""#!/usr/bin/env bash
printf 'aws' >>"$FAKE_LOG"; printf ' %q' "$@" >>"$FAKE_LOG"; echo >>"$FAKE_LOG"
args=" $* "
case $args in
  *" sts get-caller-identity "*)
    [[ -z ${FAKE_NO_CREDENTIALS:-} ]] || { echo "Unable to locate credentials." >&2; exit 253; }
    echo 123456789012 ;;
  *" configure get region "*) [[ -n ${FAKE_REGION:-} ]] && echo "$FAKE_REGION" ;;
  *" cloudformation deploy "*) : >"$FAKE_LOG.stack" ;;
  *" cloudformation describe-stacks "*)
    [[ -n ${FAKE_STACK_EXISTS:-} || -e $FAKE_LOG.stack ]] \
      || { echo "An error occurred (ValidationError): Stack does not exist" >&2; exit 254; }
    printf 'JobQueueArn\tarn:aws:batch:eu-west-1:123456789012:job-queue/q\n'
    printf 'PlannerJobDefinition\tworthy-batch-planner\n'
    printf 'ExecutorJobDefinition\tworthy-batch-executor\n'
    printf 'FinalizerJobDefinition\tworthy-batch-finalizer\n'
    printf 'RunsBucketName\truns-bucket\n'
    printf 'ManifestPrefix\trecurring-investments\n' ;;
  *" ecr describe-repositories "*)
    [[ -n ${FAKE_REPO_EXISTS:-} || -e $FAKE_LOG.stack ]] || exit 254 ;;
  *" ecr describe-images "*) [[ -n ${FAKE_IMAGE_EXISTS:-} ]] || exit 254 ;;
  *" ecr get-login-password "*) echo secret-token ;;
  *" ecr wait image-scan-complete "*)
    [[ -z ${FAKE_SCAN_FAILS:-} ]] \
      || { echo "Waiter ImageScanComplete failed: terminal failure state" >&2; exit 255; } ;;
  *" ecr describe-image-scan-findings "*)
    printf '%s\t%s\n' "${FAKE_CRITICAL:-None}" "${FAKE_HIGH:-None}" ;;
esac
exit 0
"""
FAKE_DOCKER = r"""#!/usr/bin/env bash
printf 'docker' >>"$FAKE_LOG"; printf ' %q' "$@" >>"$FAKE_LOG"; echo >>"$FAKE_LOG"
[[ $1 != login ]] || [[ $(cat) == secret-token ]]
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
        self.env: dict[str, str] = {}
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
        env = {"PATH": str(self.bin), "FAKE_LOG": str(self.log), "HOME": str(self.bin.parent)}
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
    assert order.index("docker build --platform") < order.index("aws cloudformation deploy")
    assert order.index("aws cloudformation deploy") < order.index(f"docker push {image}")
    assert order.index(f"docker push {image}") < order.index("aws ecr wait")
    (build,) = run.called("docker", "build")
    assert build[-1] == str(ROOT) and "linux/amd64" in build
    assert build[build.index("--tag") + 1] == image
    idle, deploy = run.called("aws", "cloudformation", "deploy")
    assert "ScheduleState=DISABLED" in idle, "nothing runs before the image passed its scan"
    assert "ScheduleState=ENABLED" in deploy
    assert len(order) - order[::-1].index("aws cloudformation deploy") - 1 > order.index(
        "aws ecr describe-image-scan-findings"
    ), "the schedule is enabled after the scan"
    overrides = deploy[deploy.index("--parameter-overrides") + 1 :]
    assert f"ImageUri={image}" in overrides
    assert "SubnetIds=subnet-1,subnet-2" in overrides
    assert "MaxVcpus=16" in overrides
    assert deploy[deploy.index("--template-file") + 1] == str(ROOT / "infra" / "template.yaml")
    assert "CAPABILITY_IAM" in deploy


def test_an_update_pushes_before_deploying_and_reuses_the_stack_parameters(tools: Tools) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1"}
    run = tools.run(DEPLOY, "--image-tag", "def456")
    assert run.returncode == 0, run.stderr
    order = run.commands
    assert order.index(f"docker push {REGISTRY}/worthy-batch:def456") < order.index(
        "aws cloudformation deploy"
    )
    (deploy,) = run.called("aws", "cloudformation", "deploy")
    overrides = deploy[deploy.index("--parameter-overrides") + 1 :]
    assert overrides == [f"ImageUri={REGISTRY}/worthy-batch:def456"]
    (scan,) = run.called("aws", "ecr", "wait", "image-scan-complete")
    assert scan[scan.index("--image-id") + 1] == "imageTag=def456"
    assert order.index("aws ecr describe-image-scan-findings") < order.index(
        "aws cloudformation deploy"
    )


# ECR's basic scanning on push and its findings' severity counts:
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-basic.html
# (`aws ecr wait image-scan-complete`, `aws ecr describe-image-scan-findings`).
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
    assert not run.called("aws", "cloudformation", "deploy")
    accepted = tools.run(DEPLOY, "--image-tag", "def456", "--accept-scan-findings")
    assert accepted.returncode == 0, accepted.stderr
    assert f"warning: {REGISTRY}/worthy-batch:def456 has {counted}" in accepted.stdout
    assert accepted.called("aws", "cloudformation", "deploy")


def test_a_scan_that_does_not_complete_stops_the_deploy(tools: Tools) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", "FAKE_SCAN_FAILS": "1"}
    run = tools.run(DEPLOY, "--image-tag", "def456")
    assert "scan of" in one_line_refusal(run) and "did not complete" in run.stderr
    assert not run.called("aws", "cloudformation", "deploy")


def test_a_first_deploy_whose_image_fails_the_scan_leaves_the_schedule_off(tools: Tools) -> None:
    tools.env["FAKE_HIGH"] = "3"
    run = tools.run(DEPLOY, "--image-tag", "abc123", *FIRST_DEPLOY)
    assert "3 HIGH" in one_line_refusal(run)
    (idle,) = run.called("aws", "cloudformation", "deploy")
    assert "ScheduleState=DISABLED" in idle


def test_a_roll_back_to_an_image_with_findings_is_stopped_too(tools: Tools) -> None:
    (tools.bin / "docker").unlink()
    tools.env |= {
        "FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", "FAKE_IMAGE_EXISTS": "1",
        "FAKE_CRITICAL": "1",
    }  # fmt: skip
    run = tools.run(DEPLOY, "--skip-build", "--image-tag", "abc123")
    assert "1 CRITICAL" in one_line_refusal(run)
    assert not run.called("aws", "cloudformation", "deploy")


def test_a_roll_back_deploys_an_existing_tag_without_docker(tools: Tools) -> None:
    (tools.bin / "docker").unlink()
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1", "FAKE_IMAGE_EXISTS": "1"}
    run = tools.run(DEPLOY, "--skip-build", "--image-tag", "abc123")
    assert run.returncode == 0, run.stderr
    (deploy,) = run.called("aws", "cloudformation", "deploy")
    assert f"ImageUri={REGISTRY}/worthy-batch:abc123" in deploy


def test_rolling_back_to_a_tag_that_was_never_pushed_is_refused(tools: Tools) -> None:
    tools.env |= {"FAKE_STACK_EXISTS": "1", "FAKE_REPO_EXISTS": "1"}
    run = tools.run(DEPLOY, "--skip-build", "--image-tag", "nope")
    assert "is not in the repository" in one_line_refusal(run)
    assert not run.called("aws", "cloudformation", "deploy")


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


def test_the_scripts_are_executable() -> None:
    assert os.access(DEPLOY, os.X_OK) and os.access(SMOKE, os.X_OK)


def test_every_option_the_readme_uses_exists(tools: Tools) -> None:
    readme = (ROOT / "README.md").read_text("utf-8").replace("\\\n", " ")
    for script in (DEPLOY, SMOKE):
        used = set()
        for line in readme.splitlines():
            if f"infra/{script.name}" in line:
                used |= set(re.findall(r"(?<= )--[a-z-]+", line.split(f"infra/{script.name}")[1]))
        assert used, f"README shows no {script.name} command"
        documented = tools.run(script, "--help").stdout
        assert not {option for option in used if option not in documented}, script.name
