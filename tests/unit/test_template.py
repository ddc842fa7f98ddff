"""infra/template.yaml read as data: what moto cannot deploy, and the rules of the stack.

moto's CloudFormation skips some resource types (the Scheduler schedule, the
bucket policy, SNS subscriptions and topic policies, CloudWatch alarms) and
ignores some properties it does deploy (bucket lifecycle and public access
block, job timeouts); tests/integration/test_infra.py says which. Their
properties are asserted here, from the template itself.
"""

from __future__ import annotations

import ast
import json
import re
from fnmatch import fnmatchcase
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from common.adapters.db import RDS_CA_BUNDLE
from common.adapters.heartbeat import HEARTBEAT_METRIC
from common.platform.config import Settings
from common.platform.logging import METRICS_NAMESPACE
from tests.cfn import (
    ROOT,
    as_list,
    load_template,
    policy_documents,
    resolve,
    resources_of_type,
    statements,
)

DATA_SERVICES = ("s3", "batch", "secretsmanager", "kms")
READ_ONLY_BATCH = ("batch:Describe*", "batch:List*")
PROVIDER_KEYS = ("FINNHUB_API_KEY", "ALPHA_VANTAGE_API_KEY", "EXCHANGE_RATE_API_KEY")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def job_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = resources_of_type(template, "AWS::Batch::JobDefinition")
    return {props["JobDefinitionName"]["Fn::Sub"].split("-")[-1]: props for props in found.values()}


def resource(template: dict[str, Any], name: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][name]["Properties"]
    return props


# ---------------------------------------------------------------------- IAM


def test_no_policy_allows_every_action_or_every_resource_of_a_data_service(
    template: dict[str, Any],
) -> None:
    problems = []
    documents = list(policy_documents(template))
    assert len(documents) >= 10, "every role, managed policy and resource policy is inspected"
    for where, document in documents:
        for statement in statements(document):
            actions = as_list(statement.get("Action", []))
            if "*" in actions:
                problems.append(f"{where}: Action '*'")
            if statement["Effect"] != "Allow":
                continue
            for action in actions:
                if action.endswith(":*"):
                    problems.append(f"{where}: every action of a service ({action})")
            if "*" not in as_list(statement.get("Resource", [])):
                continue
            for action in actions:
                service = action.split(":")[0]
                read_only = any(fnmatchcase(action, p) for p in READ_ONLY_BATCH)
                if service in DATA_SERVICES and not read_only:
                    problems.append(f"{where}: {action} on Resource '*'")
    assert not problems, "\n".join(problems)


# Values for the parameters without a default, as a deployment passes them.
DATABASE_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:worthy/db-AbCdEf"
API_KEY_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:worthy/api-GhIjKl"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
PARAMETERS = {
    "DatabaseSecretArn": DATABASE_SECRET,
    "ApiKeySecretArn": API_KEY_SECRET,
    "SecretsKmsKeyArn": KMS_KEY,
    "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/worthy-batch:abc123",
    "AlarmEmail": "ops@example.com",
}


def allowed(template: dict[str, Any], role: str) -> dict[str, list[str]]:
    """action -> resolved resources that the role's policies allow."""
    grants: dict[str, list[str]] = {}
    documents = [p["PolicyDocument"] for p in resource(template, role).get("Policies", [])]
    for props in resources_of_type(template, "AWS::IAM::ManagedPolicy").values():
        if {"Ref": role} in props.get("Roles", []):
            documents.append(props["PolicyDocument"])
    for document in documents:
        for statement in statements(document):
            if statement["Effect"] == "Allow":
                for action in as_list(statement["Action"]):
                    resolved = resolve(template, as_list(statement["Resource"]), PARAMETERS)
                    grants.setdefault(action, []).extend(resolved)
    return grants


JOB_DEFINITION = "arn:aws:batch:us-east-1:123456789012:job-definition/worthy-batch-{}"


def test_only_the_planner_submits_and_only_executors_and_the_finalizer(
    template: dict[str, Any],
) -> None:
    planner = allowed(template, "PlannerJobRole")
    assert sorted(planner["batch:SubmitJob"]) == sorted(
        ["<JobQueue>"]
        + [JOB_DEFINITION.format(stage) for stage in ("executor", "finalizer")]
        + [JOB_DEFINITION.format(stage) + ":*" for stage in ("executor", "finalizer")]
    )
    assert planner["batch:ListJobs"] == ["*"], "BatchSubmitter finds a job by name first"
    worker = allowed(template, "WorkerJobRole")
    assert not [action for action in worker if action.startswith("batch:")]


def test_the_schedules_may_submit_the_planner_and_the_watchdog_only(
    template: dict[str, Any],
) -> None:
    scheduler = allowed(template, "SchedulerRole")
    assert sorted(scheduler["batch:SubmitJob"]) == sorted(
        ["<JobQueue>"]
        + [JOB_DEFINITION.format(stage) for stage in ("planner", "watchdog")]
        + [JOB_DEFINITION.format(stage) + ":*" for stage in ("planner", "watchdog")]
    )
    assert scheduler["sqs:SendMessage"] == ["<ScheduleDeadLetterQueue.Arn>"]
    trust = resource(template, "SchedulerRole")["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]


def test_jobs_reach_s3_under_the_runs_prefix_only(template: dict[str, Any]) -> None:
    for role in ("PlannerJobRole", "WorkerJobRole"):
        grants = allowed(template, role)
        s3 = {action: where for action, where in grants.items() if action.startswith("s3:")}
        assert s3 == {
            "s3:GetObject": ["<RunsBucket.Arn>/recurring-investments/*"],
            "s3:PutObject": ["<RunsBucket.Arn>/recurring-investments/*"],
            "s3:ListBucket": ["<RunsBucket.Arn>"],
        }, role


def test_a_missing_result_file_reads_as_404_not_403(template: dict[str, Any]) -> None:
    """finalize reads results/N.json of chunks that never finished. AWS's rule (GetObject,
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html): "If the object you
    request doesn't exist, the error that Amazon S3 returns depends on whether you also have
    the s3:ListBucket permission": 404 with it, 403 without. The rule names the permission
    on the bucket; a GetObject request has no s3:prefix key, so a ListBucket grant under an
    s3:prefix condition would not count. Hence an unconditional grant on the bucket."""
    listing = [
        s
        for s in statements(resource(template, "RunsAccessPolicy")["PolicyDocument"])
        if "s3:ListBucket" in as_list(s["Action"])
    ]
    assert len(listing) == 1
    assert "Condition" not in listing[0]
    assert resolve(template, listing[0]["Resource"]) == "<RunsBucket.Arn>"


# Every AWS call the code in the containers makes, as IAM actions (HeadObject needs
# s3:GetObject; `submit --wait`'s DescribeJobs and GetLogEvents run on an operator's machine).
CONTAINER_CALLS = {
    "PlannerJobRole": {
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "batch:SubmitJob",
        "batch:ListJobs",
        "batch:DescribeJobs",
        "batch:DescribeJobDefinitions",
        "batch:DescribeJobQueues",
    },
    "WorkerJobRole": {"s3:GetObject", "s3:PutObject", "s3:ListBucket"},
}


@pytest.mark.parametrize("role", sorted(CONTAINER_CALLS))
def test_job_roles_grant_no_action_the_code_never_calls(
    template: dict[str, Any], role: str
) -> None:
    assert set(allowed(template, role)) == CONTAINER_CALLS[role]


# boto3 method -> the IAM action it needs.
BOTO_ACTIONS = {
    "put_object": "s3:PutObject",
    "get_object": "s3:GetObject",
    "head_object": "s3:GetObject",
    "list_objects_v2": "s3:ListBucket",
    "delete_object": "s3:DeleteObject",
    "submit_job": "batch:SubmitJob",
    "list_jobs": "batch:ListJobs",
    "describe_jobs": "batch:DescribeJobs",
    "describe_job_definitions": "batch:DescribeJobDefinitions",
    "describe_job_queues": "batch:DescribeJobQueues",
    "get_log_events": "logs:GetLogEvents",
}
# What runs inside the job containers (the operator commands in ops/ run elsewhere).
CONTAINER_CODE = (
    "planner",
    "executor",
    "finalizer",
    "common/adapters/submitters",
    "common/adapters/manifest_store.py",
)


# The one Batch adapter (the only module that calls Batch): which boto3 methods each of
# its functions calls, so that container code calling `submit(...)` counts as SubmitJob.
BATCH_ADAPTER = "common/adapters/batch.py"


def batch_adapter_calls() -> dict[str, list[str]]:
    tree = ast.parse((ROOT / BATCH_ADAPTER).read_text("utf-8"))
    return {
        node.name: boto_methods(ast.unparse(node))
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def boto_methods(text: str) -> list[str]:
    paginated = re.findall(r"get_paginator\(\s*[\"'](\w+)[\"']", text)
    return [*re.findall(r"\.(\w+)\(", text), *paginated]


def test_the_code_in_the_containers_calls_only_what_the_roles_grant() -> None:
    adapter = batch_adapter_calls()
    assert adapter["submit"] == ["submit_job"], "the adapter's calls are read"
    called = set()
    for part in CONTAINER_CODE:
        path = ROOT / part
        for source in [path] if path.is_file() else sorted(path.rglob("*.py")):
            text = source.read_text("utf-8")
            through = re.findall(r"(?<![\w.])(\w+)\(", text)
            methods = [m for name in through if name in adapter for m in adapter[name]]
            for method in [*boto_methods(text), *methods]:
                if method in BOTO_ACTIONS:
                    called.add(BOTO_ACTIONS[method])
    granted = set().union(*CONTAINER_CALLS.values())
    assert called - {"s3:ListBucket"} <= granted, called - granted
    assert granted - {"s3:ListBucket"} <= called, f"granted, never called: {granted - called}"


def test_the_execution_role_reads_the_two_secrets_and_this_repository_only(
    template: dict[str, Any],
) -> None:
    grants = allowed(template, "ExecutionRole")
    assert sorted(grants["secretsmanager:GetSecretValue"]) == sorted(
        [DATABASE_SECRET, API_KEY_SECRET]
    )
    assert grants["kms:Decrypt"] == [KMS_KEY]
    assert grants["ecr:BatchGetImage"] == ["<Repository.Arn>"]
    assert grants["ecr:GetAuthorizationToken"] == ["*"], "account-level, takes no resource"
    assert grants["logs:PutLogEvents"] == ["<LogGroup.Arn>"]


def test_without_a_customer_key_the_execution_role_gets_no_kms_grant(
    template: dict[str, Any],
) -> None:
    document = resource(template, "ExecutionRole")["Policies"][1]["PolicyDocument"]
    resolved = resolve(template, document, PARAMETERS | {"SecretsKmsKeyArn": ""})
    assert [s["Sid"] for s in resolved["Statement"]] == ["ReadTheTwoSecrets"]


# ---------------------------------------------------------------------- jobs


def test_secrets_are_injected_from_secrets_manager_never_as_plain_environment(
    job_definitions: dict[str, dict[str, Any]], template: dict[str, Any]
) -> None:
    secret_variables = {
        name.upper()
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    for stage, props in job_definitions.items():
        container = resolve(template, props["ContainerProperties"], PARAMETERS)
        plain = {e["Name"] for e in container["Environment"]}
        injected = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
        assert not plain & secret_variables, stage
        assert injected["DATABASE_URL"] == DATABASE_SECRET, stage
    executor = resolve(template, job_definitions["executor"]["ContainerProperties"], PARAMETERS)
    injected = {s["Name"]: s["ValueFrom"] for s in executor["Secrets"]}
    for key in PROVIDER_KEYS:
        # arn:...:secret:name-suffix:json-key:version-stage:version-id
        assert injected[key] == f"{API_KEY_SECRET}:{key}::"


def test_each_container_gets_the_plain_settings_it_needs(
    job_definitions: dict[str, dict[str, Any]], template: dict[str, Any]
) -> None:
    settings = {name.upper() for name in Settings.model_fields}
    for stage, props in job_definitions.items():
        container = resolve(template, props["ContainerProperties"], PARAMETERS)
        environment = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert set(environment) <= settings, (
            f"{stage}: not a setting: {set(environment) - settings}"
        )
        assert environment["LOG_FORMAT"] == "json"
        assert environment["MANIFEST_BUCKET"] == "<RunsBucket>"
        assert environment["MANIFEST_PREFIX"] == "recurring-investments"
        assert environment["BATCH_JOB_QUEUE"] == "<JobQueue>"
        if stage == "planner":  # the revisions of its own release
            assert environment["EXECUTOR_JOB_DEFINITION"] == "<ExecutorJobDefinition>"
            assert environment["FINALIZER_JOB_DEFINITION"] == "<FinalizerJobDefinition>"
        else:
            assert environment["EXECUTOR_JOB_DEFINITION"] == "worthy-batch-executor"
            assert environment["FINALIZER_JOB_DEFINITION"] == "worthy-batch-finalizer"


def batch_decision(rules: list[dict[str, str]], exit_code: int | None, status_reason: str) -> str:
    """What AWS Batch does after a failed attempt: the first rule whose conditions all match
    wins and, when none matches, the job is retried. An exit code that does not exist has no
    decimal representation, so it matches no OnExitCode pattern.
    https://docs.aws.amazon.com/batch/latest/APIReference/API_EvaluateOnExit.html"""
    for rule in rules:
        conditions = []
        if "OnExitCode" in rule:
            conditions.append(
                exit_code is not None and fnmatchcase(str(exit_code), rule["OnExitCode"])
            )
        if "OnStatusReason" in rule:
            conditions.append(fnmatchcase(status_reason, rule["OnStatusReason"]))
        if all(conditions):
            return rule["Action"]
    return "RETRY"


EXITED = "Essential container in task exited"


@pytest.mark.parametrize(
    ("exit_code", "status_reason", "action"),
    [
        (75, EXITED, "RETRY"),
        (65, EXITED, "EXIT"),
        (78, EXITED, "EXIT"),
        (70, EXITED, "EXIT"),
        (1, EXITED, "EXIT"),
        (137, "OutOfMemoryError: Container killed due to memory usage", "EXIT"),
        # Batch's attempt status when Fargate never started the container; the container's
        # own reason (CannotPullContainerError: ..., ResourceInitializationError: ...) is a
        # separate field. https://docs.aws.amazon.com/batch/latest/userguide/job_retries.html
        (None, "Task failed to start", "RETRY"),
        # ENI attachment timeout, quoted from AWS re:Post "resolve network interface
        # provision errors for Amazon ECS on Fargate" (via
        # https://zenn.dev/mn87/articles/89a72e76e86c59).
        (None, "Timeout waiting for network interface provisioning to complete.", "RETRY"),
        # Task retirement: the stoppedReason AWS documents in
        # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-maintenance.html;
        # the container may have been stopped with SIGTERM and report 143.
        (
            143,
            "ECS is performing maintenance on the underlying infrastructure hosting the task",
            "RETRY",
        ),
        # Any other stop without an exit code (e.g. a stopped-reason prefix from
        # https://docs.aws.amazon.com/AmazonECS/latest/userguide/stopped-task-error-codes.html
        # surfacing as the status) matches no rule: Batch retries it.
        (None, "ResourceInitializationError: unable to pull secrets or registry auth", "RETRY"),
        (None, "CannotPullContainerError: ref pull has been retried 1 time(s)", "RETRY"),
    ],
)
def test_retries_follow_the_exit_codes_and_fargate_infrastructure_failures(
    job_definitions: dict[str, dict[str, Any]],
    exit_code: int | None,
    status_reason: str,
    action: str,
) -> None:
    for stage, props in job_definitions.items():
        strategy = props["RetryStrategy"]
        got = batch_decision(strategy["EvaluateOnExit"], exit_code, status_reason)
        assert got == action, f"{stage}: exit {exit_code} / {status_reason!r}"


# API_EvaluateOnExit: onStatusReason and onReason "can contain letters, numbers, periods (.),
# colons (:), and white space ... can optionally end with an asterisk (*)"; onExitCode "can
# contain only numbers, and can end with an asterisk (*)"; up to 5 rules (RetryStrategy).
REASON_GLOB = re.compile(r"^[A-Za-z0-9.: \t]{0,511}\*?$")
EXIT_CODE_GLOB = re.compile(r"^[0-9]{0,511}\*?$")


def test_retry_rules_are_valid_batch_syntax_and_the_same_for_every_job(
    job_definitions: dict[str, dict[str, Any]],
) -> None:
    strategies = {stage: props["RetryStrategy"] for stage, props in job_definitions.items()}
    assert len({json.dumps(s, sort_keys=True) for s in strategies.values()}) == 1, strategies
    strategy = strategies["planner"]
    assert 2 <= strategy["Attempts"] <= 10
    rules = strategy["EvaluateOnExit"]
    assert len(rules) <= 5, "Batch accepts five rules"
    for rule in rules:
        assert rule["Action"] in ("RETRY", "EXIT")
        assert set(rule) - {"Action"} <= {"OnExitCode", "OnStatusReason", "OnReason"}, rule
        for key in ("OnStatusReason", "OnReason"):
            if key in rule:
                assert REASON_GLOB.match(rule[key]), rule
        if "OnExitCode" in rule:
            assert EXIT_CODE_GLOB.match(rule["OnExitCode"]), rule
        assert not rule.get("OnStatusReason", "").startswith("Host EC2"), "never on Fargate"


def test_jobs_are_small_fargate_containers_with_timeouts(
    job_definitions: dict[str, dict[str, Any]], template: dict[str, Any]
) -> None:
    for stage, props in job_definitions.items():
        props = resolve(template, props, PARAMETERS)
        assert props["PlatformCapabilities"] == ["FARGATE"]
        assert 0 < props["Timeout"]["AttemptDurationSeconds"] <= 4 * 3600, stage
        sizes = {
            r["Type"]: r["Value"] for r in props["ContainerProperties"]["ResourceRequirements"]
        }
        # The planner is sized for a million plans (its workers follow its cgroup);
        # executor children and the finalizer stay small.
        expected = (
            {"VCPU": "2", "MEMORY": "4096"}
            if stage == "planner"
            else {
                "VCPU": "0.25",
                "MEMORY": "512",
            }
        )
        assert sizes == expected, stage
        logs = props["ContainerProperties"]["LogConfiguration"]
        assert logs["Options"]["awslogs-group"] == "<LogGroup>"
        assert logs["Options"]["awslogs-stream-prefix"] == stage
    commands = {stage: p["ContainerProperties"]["Command"] for stage, p in job_definitions.items()}
    assert commands == {
        "planner": ["plan"],
        "executor": ["execute"],
        "finalizer": ["finalize", "--run-id", "Ref::run_id"],
        "watchdog": ["watchdog"],
    }


def test_containers_run_read_only_with_a_scratch_volume_and_an_init_process(
    job_definitions: dict[str, dict[str, Any]],
) -> None:
    """ReadonlyRootFilesystem, and a named volume without Host (Host "isn't applicable to jobs
    that are running on Fargate resources"; a name alone is a bind mount on the task's
    ephemeral storage; Tmpfs isn't applicable to Fargate either):
    https://docs.aws.amazon.com/batch/latest/APIReference/API_Volume.html,
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html.
    InitProcessEnabled carries no Fargate restriction:
    https://docs.aws.amazon.com/batch/latest/APIReference/API_LinuxParameters.html"""
    for stage, props in job_definitions.items():
        container = props["ContainerProperties"]
        assert container["ReadonlyRootFilesystem"] is True, stage
        assert container["LinuxParameters"] == {"InitProcessEnabled": True}, stage
        volumes = {v["Name"]: v for v in container["Volumes"]}
        assert all(set(v) == {"Name"} for v in volumes.values()), f"{stage}: no Host on Fargate"
        mounts = container["MountPoints"]
        assert mounts == [{"SourceVolume": "scratch", "ContainerPath": "/tmp", "ReadOnly": False}]
        assert set(volumes) == {m["SourceVolume"] for m in mounts}, stage


def test_a_job_stuck_runnable_for_a_reason_batch_can_act_on_is_cancelled(
    template: dict[str, Any],
) -> None:
    """https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable_time_limit_actions.html:
    for Fargate queues the only action is CANCEL; the reasons that support the action are
    CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY, MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE,
    MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT (and an EC2-only one); MaxTimeSeconds is 600 to
    86,400 (https://docs.aws.amazon.com/batch/latest/APIReference/API_JobStateTimeLimitAction.html).
    A cancelled job ends FAILED, which the JobFailedRule pattern (status FAILED) matches."""
    actions = resource(template, "JobQueue")["JobStateTimeLimitActions"]
    supported = {
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
    }
    assert {a["Reason"] for a in actions} == supported
    for action in actions:
        assert action["Action"] == "CANCEL" and action["State"] == "RUNNABLE", action
        assert 600 <= action["MaxTimeSeconds"] <= 86_400, action
    rule = resolve(template, resource(template, "JobFailedRule"))
    assert rule["EventPattern"]["detail"]["status"] == ["FAILED"]


def test_the_compute_environment_is_fargate_capped_by_max_vcpus(template: dict[str, Any]) -> None:
    environment = resource(template, "ComputeEnvironment")
    assert environment["Type"] == "MANAGED"
    assert environment["ComputeResources"]["Type"] == "FARGATE"
    assert environment["ComputeResources"]["MaxvCpus"] == {"Ref": "MaxVcpus"}
    queue = resource(template, "JobQueue")
    assert queue["ComputeEnvironmentOrder"] == [
        {"Order": 1, "ComputeEnvironment": {"Ref": "ComputeEnvironment"}}
    ]


# ---------------------------------------------------------------------- schedule


def test_the_schedule_submits_the_planner_at_0935_new_york_time_on_weekdays(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]
    assert parameters["ScheduleExpression"]["Default"] == "cron(35 9 ? * MON-FRI *)"
    assert parameters["ScheduleTimezone"]["Default"] == "America/New_York"
    ZoneInfo(parameters["ScheduleTimezone"]["Default"])
    schedule = resolve(template, resource(template, "PlannerSchedule"), PARAMETERS)
    assert schedule["ScheduleExpressionTimezone"] == "America/New_York"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = schedule["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:batch:submitJob"
    assert target["RoleArn"] == "<SchedulerRole.Arn>"
    assert json.loads(target["Input"]) == {
        "JobName": "worthy-batch-planner",
        "JobQueue": "<JobQueue>",
        "JobDefinition": "worthy-batch-planner",
    }
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["DeadLetterConfig"] == {"Arn": "<ScheduleDeadLetterQueue.Arn>"}
    assert template["Resources"]["ScheduleDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"


def test_a_missed_schedule_alarms_the_topic(template: dict[str, Any]) -> None:
    alarm = resolve(template, resource(template, "ScheduleDeadLetterAlarm"))
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": "<ScheduleDeadLetterQueue.QueueName>"}
    ]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0
    assert alarm["AlarmActions"] == ["<AlarmTopic>"]


# ---------------------------------------------------------------------- alarms


def test_failed_jobs_of_this_queue_reach_the_alarm_email(template: dict[str, Any]) -> None:
    rule = resolve(template, resource(template, "JobFailedRule"))
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.batch"]
    assert pattern["detail-type"] == ["Batch Job State Change"]
    assert pattern["detail"]["status"] == ["FAILED"]
    assert pattern["detail"]["jobQueue"] == ["<JobQueue>"]
    assert [t["Arn"] for t in rule["Targets"]] == ["<AlarmTopic>"]
    subscription = resolve(template, resource(template, "AlarmEmailSubscription"), PARAMETERS)
    assert subscription == {
        "TopicArn": "<AlarmTopic>",
        "Protocol": "email",
        "Endpoint": "ops@example.com",
    }
    policy = resolve(template, resource(template, "AlarmTopicPolicy"))["PolicyDocument"]
    publishers = {
        s["Principal"]["Service"]: s["Condition"]["ArnEquals"]["aws:SourceArn"]
        for s in policy["Statement"]
    }
    assert publishers == {
        "events.amazonaws.com": "<JobFailedRule.Arn>",
        "cloudwatch.amazonaws.com": [
            "<ScheduleDeadLetterAlarm.Arn>",
            "<RunIncompleteAlarm.Arn>",
            "<EventsDeadLetterAlarm.Arn>",
        ],
    }


def test_a_partial_or_failed_run_alarms(template: dict[str, Any]) -> None:
    alarm = resolve(template, resource(template, "RunIncompleteAlarm"))
    # The finalizer's EMF line: namespace WorthyBatch, dimensions market and stage.
    assert (alarm["Namespace"], alarm["MetricName"]) == ("WorthyBatch", "run_incomplete")
    assert alarm["Dimensions"] == [
        {"Name": "market", "Value": "XNYS"},
        {"Name": "stage", "Value": "finalizer"},
    ]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0
    assert alarm["AlarmActions"] == ["<AlarmTopic>"]


def test_a_failed_executor_job_submits_the_finalizer_of_its_run(
    template: dict[str, Any],
) -> None:
    # A failed array makes Batch fail its dependent finalizer without running it
    # (https://docs.aws.amazon.com/batch/latest/userguide/job_dependencies.html), so
    # the stack submits the finalizer itself; tests/unit/test_batch_rules.py plays it.
    rule = resolve(template, resource(template, "FinalizeAfterFailedExecutorRule"))
    detail = rule["EventPattern"]["detail"]
    assert detail["status"] == ["FAILED"] and detail["jobQueue"] == ["<JobQueue>"]
    assert detail["jobDefinition"] == [
        {"prefix": "arn:aws:batch:us-east-1:123456789012:job-definition/worthy-batch-executor:"}
    ]
    (target,) = rule["Targets"]
    assert target["Arn"] == "<JobQueue>" and target["RoleArn"] == "<EventsSubmitRole.Arn>"
    assert target["BatchParameters"]["JobDefinition"] == "worthy-batch-finalizer"
    assert target["InputTransformer"]["InputPathsMap"] == {"run_id": "$.detail.parameters.run_id"}
    role = resolve(template, resource(template, "EventsSubmitRole"))
    (statement,) = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "batch:SubmitJob"
    assert all("finalizer" in r or r == "<JobQueue>" for r in statement["Resource"])


def test_the_executor_knows_its_attempt_budget(
    job_definitions: dict[str, dict[str, Any]], template: dict[str, Any]
) -> None:
    props = resolve(template, job_definitions["executor"])
    environment = {v["Name"]: v["Value"] for v in props["ContainerProperties"]["Environment"]}
    assert int(environment["JOB_ATTEMPTS"]) == props["RetryStrategy"]["Attempts"]


# ---------------------------------------------------------------------- watchdog


def test_the_watchdog_runs_after_the_days_run_in_the_markets_time_zone(
    template: dict[str, Any],
) -> None:
    """Replaces the metric-math dead-man alarm: a job, submitted by a second schedule at
    16:30 New York time on weekdays (EventBridge Scheduler follows daylight saving in
    ScheduleExpressionTimezone), that fails when a market day's run is missing or not final."""
    assert "RunHeartbeatAlarm" not in template["Resources"]
    parameters = template["Parameters"]
    assert parameters["WatchdogScheduleExpression"]["Default"] == "cron(30 16 ? * MON-FRI *)"
    schedule = resolve(template, resource(template, "WatchdogSchedule"), PARAMETERS)
    planner = resolve(template, resource(template, "PlannerSchedule"), PARAMETERS)
    assert schedule["ScheduleExpressionTimezone"] == planner["ScheduleExpressionTimezone"]
    assert schedule["State"] == planner["State"] == "ENABLED", "one ScheduleState for both"
    assert json.loads(schedule["Target"]["Input"]) == {
        "JobName": "worthy-batch-watchdog",
        "JobQueue": "<JobQueue>",
        "JobDefinition": "worthy-batch-watchdog",
    }
    assert schedule["Target"]["DeadLetterConfig"] == planner["Target"]["DeadLetterConfig"]
    assert schedule["Target"]["RoleArn"] == "<SchedulerRole.Arn>"


def test_a_failing_watchdog_ends_failed_and_reaches_the_alarm_email(
    job_definitions: dict[str, dict[str, Any]], template: dict[str, Any]
) -> None:
    """`worthy-batch watchdog` exits 1 when a market day's run is missing or not final
    (docs/operating.md "Commands"): no retry rule matches 1, the catch-all ends the job FAILED, and
    JobFailedRule (every FAILED job of the queue that is not an array child) e-mails it."""
    watchdog = resolve(template, job_definitions["watchdog"], PARAMETERS)
    assert watchdog["ContainerProperties"]["Command"] == ["watchdog"]
    assert "JobRoleArn" not in watchdog["ContainerProperties"], "database only: no AWS access"
    rules = watchdog["RetryStrategy"]["EvaluateOnExit"]
    assert batch_decision(rules, 1, EXITED) == "EXIT"
    assert batch_decision(rules, 75, EXITED) == "RETRY", "a database that is down is retried"
    pattern = resolve(template, resource(template, "JobFailedRule"))["EventPattern"]["detail"]
    assert pattern["jobQueue"] == ["<JobQueue>"] and "jobDefinition" not in pattern
    finalize = resolve(template, resource(template, "FinalizeAfterFailedExecutorRule"))
    assert all(
        "executor" in p["prefix"] for p in finalize["EventPattern"]["detail"]["jobDefinition"]
    )


def test_the_failed_job_rule_and_the_finalize_rule_have_a_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    """EventBridge sends undeliverable events to the target's dead-letter queue, as
    events.amazonaws.com, so the queue's resource policy must allow the rule
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html)."""
    for name in ("JobFailedRule", "FinalizeAfterFailedExecutorRule"):
        (target,) = resolve(template, resource(template, name))["Targets"]
        assert target["DeadLetterConfig"] == {"Arn": "<EventsDeadLetterQueue.Arn>"}, name
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0, name
    policy = resolve(template, resource(template, "EventsDeadLetterQueuePolicy"))
    assert policy["Queues"] == ["<EventsDeadLetterQueue>"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == [
        "<JobFailedRule.Arn>",
        "<FinalizeAfterFailedExecutorRule.Arn>",
    ]
    alarm = resolve(template, resource(template, "EventsDeadLetterAlarm"))
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": "<EventsDeadLetterQueue.QueueName>"}
    ]
    assert alarm["AlarmActions"] == ["<AlarmTopic>"]


# ---------------------------------------------------------------------- dashboard


def emitted_metrics() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(metric, dimensions) of every emit_metrics call in the shipped code whose dimensions
    are constants or the market (read as XNYS, the one market the stack's alarms watch)."""
    found = set()
    for package in ("common", "entry", "planner", "executor", "finalizer", "ops"):
        for source in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(source.read_text("utf-8"))
            for call in ast.walk(tree):
                if not (
                    isinstance(call, ast.Call) and getattr(call.func, "id", "") == "emit_metrics"
                ):
                    continue
                names = call.args[0]
                assert isinstance(names, ast.Dict), source
                dimensions = tuple(
                    sorted(
                        (k.arg, k.value.value if isinstance(k.value, ast.Constant) else "XNYS")
                        for k in call.keywords
                        if k.arg
                    )
                )
                for key in names.keys:
                    if isinstance(key, ast.Constant):
                        found.add((str(key.value), dimensions))
                    elif isinstance(key, ast.Name) and key.id == "HEARTBEAT_METRIC":
                        found.add((HEARTBEAT_METRIC, dimensions))
    return found


def test_the_dashboard_shows_only_metrics_the_jobs_emit(template: dict[str, Any]) -> None:
    props = resolve(template, resource(template, "Dashboard"), PARAMETERS)
    body = json.loads(props["DashboardBody"])
    emitted = emitted_metrics()
    assert ("purchased", (("market", "XNYS"), ("stage", "finalizer"))) in emitted
    shown = set()
    for widget in body["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            if isinstance(metric[0], dict):
                assert "WorthyBatch" in metric[0]["expression"]
                continue
            if metric[0] != METRICS_NAMESPACE:
                continue
            names = [m for m in metric if isinstance(m, str)]
            dimensions = tuple(sorted(zip(names[2::2], names[3::2], strict=True)))
            shown.add((names[1], dimensions))
    assert shown - emitted == set(), "the dashboard names a metric nobody emits"
    # runs by status, purchases, failures, API calls, chunk durations, the planner
    assert {name for name, _ in shown} >= {
        HEARTBEAT_METRIC,
        "run_incomplete",
        "purchased",
        "failed",
        "duration_ms",
        "plans_due",
        "start_delay_ms",  # the queue's wait
    }
    searches = [
        metric[0]["expression"]
        for widget in body["widgets"]
        for metric in widget["properties"].get("metrics", [])
        if isinstance(metric[0], dict)
    ]
    assert any("provider" in s and "api_calls" in s for s in searches)  # API calls by provider
    assert ("api_calls", (("market", "XNYS"), ("provider", "XNYS"))) in emitted
    queries = [w["properties"]["query"] for w in body["widgets"] if w["type"] == "log"]
    assert len(queries) >= 2 and all(q.startswith("SOURCE '<LogGroup>' |") for q in queries)
    alarms = next(w for w in body["widgets"] if w["type"] == "alarm")["properties"]["alarms"]
    named = {resolve(template, resource(template, a))["AlarmName"] for a in ALARMS}
    assert {a.rsplit(":", 1)[1] for a in alarms} == named


ALARMS = ("RunIncompleteAlarm", "ScheduleDeadLetterAlarm", "EventsDeadLetterAlarm")


# ---------------------------------------------------------------------- tags, data, checks


def test_every_taggable_resource_carries_project_stage_and_cost_centre(
    template: dict[str, Any],
) -> None:
    """Taggable means the resource type's CloudFormation schema has a Tags property (the
    schemas cfn-lint ships); Batch takes a map, most others a list of Key/Value."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    wanted = {"project": "worthy-batch", "stage": "prod", "cost-centre": "unassigned"}
    tagged = 0
    for name, spec in template["Resources"].items():
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", spec["Type"]).schema
        if "Tags" not in schema["properties"]:
            continue
        tags = resolve(template, spec["Properties"].get("Tags"), PARAMETERS)
        if isinstance(tags, list):
            tags = {t["Key"]: t["Value"] for t in tags}
        assert tags == wanted, name
        tagged += 1
    assert tagged >= 20
    for stage, props in resources_of_type(template, "AWS::Batch::JobDefinition").items():
        assert props["PropagateTags"] is True, f"{stage}: tags reach the ECS tasks"


@pytest.mark.parametrize(
    "name",
    ["RunsBucket", "Repository", "LogGroup", "ScheduleDeadLetterQueue", "EventsDeadLetterQueue"],
)
def test_resources_that_hold_data_survive_deletion_and_replacement(
    template: dict[str, Any], name: str
) -> None:
    spec = template["Resources"][name]
    assert (spec["DeletionPolicy"], spec["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_every_skipped_checkov_check_says_why(template: dict[str, Any]) -> None:
    skipped = []
    for name, spec in template["Resources"].items():
        for skip in spec.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
            assert len(skip["comment"].split()) >= 10, f"{name} {skip['id']}: say why"
            skipped.append(skip["id"])
    assert sorted(skipped) == [
        "CKV_AWS_158",
        "CKV_AWS_18",
        "CKV_AWS_26",
        "CKV_AWS_27",
        "CKV_AWS_27",
    ]


# ---------------------------------------------------------------------- parameters


def test_the_architecture_parameter_reaches_every_job_definition(
    template: dict[str, Any], job_definitions: dict[str, dict[str, Any]]
) -> None:
    """RuntimePlatform.cpuArchitecture takes X86_64 or ARM64 for Fargate jobs
    (https://docs.aws.amazon.com/batch/latest/APIReference/API_RuntimePlatform.html)."""
    parameter = template["Parameters"]["CpuArchitecture"]
    assert parameter["AllowedValues"] == ["X86_64", "ARM64"]
    assert parameter["Default"] == "X86_64"
    for stage, props in job_definitions.items():
        platform = resolve(template, props, PARAMETERS | {"CpuArchitecture": "ARM64"})[
            "ContainerProperties"
        ]["RuntimePlatform"]
        assert platform == {"OperatingSystemFamily": "LINUX", "CpuArchitecture": "ARM64"}, stage


def test_provider_rates_and_budgets_are_parameters_that_default_to_the_settings(
    template: dict[str, Any], job_definitions: dict[str, dict[str, Any]]
) -> None:
    fields = [name for name in Settings.model_fields if "_calls_per_" in name]
    assert len(fields) == 6
    for stage in ("planner", "executor"):
        container = resolve(template, job_definitions[stage]["ContainerProperties"])
        environment = {e["Name"]: str(e["Value"]) for e in container["Environment"]}
        for field in fields:
            default = Settings.model_fields[field].default
            expected = "unlimited" if default is None else str(default)
            assert environment[field.upper()] == expected, f"{stage}: {field}"
            parsed = Settings.model_validate({field: environment[field.upper()]})
            assert getattr(parsed, field) == default


@pytest.mark.parametrize(
    ("store", "path"),
    [("rds-ca-bundle", RDS_CA_BUNDLE), ("amazon-root-cas", "/etc/ssl/certs/ca-certificates.crt")],
)
def test_the_database_trust_store_is_a_parameter(
    template: dict[str, Any], job_definitions: dict[str, dict[str, Any]], store: str, path: str
) -> None:
    """RDS Proxy presents an ACM certificate that chains to Amazon Root CA 1-4 (in the
    image's system store, Debian's ca-certificates), not to the RDS CA bundle."""
    for stage, props in job_definitions.items():
        container = resolve(
            template, props["ContainerProperties"], PARAMETERS | {"DatabaseTrustStore": store}
        )
        environment = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert environment["DATABASE_SSLROOTCERT"] == path, stage


# ---------------------------------------------------------------------- storage


def test_the_runs_bucket_is_private_encrypted_tls_only_and_expires_runs(
    template: dict[str, Any],
) -> None:
    bucket = resolve(template, resource(template, "RunsBucket"))
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    expiring = [r for r in bucket["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    assert expiring == [
        {
            "Id": "expire-runs",
            "Status": "Enabled",
            "Prefix": "recurring-investments/",
            "ExpirationInDays": template["Parameters"]["RunRetentionDays"]["Default"],
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        }
    ]
    policy = resolve(template, resource(template, "RunsBucketPolicy"))["PolicyDocument"]
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(deny["Resource"]) == ["<RunsBucket.Arn>", "<RunsBucket.Arn>/*"]


def test_images_are_scanned_immutable_and_old_ones_expire(template: dict[str, Any]) -> None:
    repository = resource(template, "Repository")
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    # KMS with ECR's AWS managed key: no KmsKey, nothing to grant the pulling role
    # (https://docs.aws.amazon.com/AmazonECR/latest/userguide/encryption-at-rest.html).
    assert repository["EncryptionConfiguration"] == {"EncryptionType": "KMS"}
    rules = json.loads(repository["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert {r["selection"]["tagStatus"] for r in rules} == {"untagged", "any"}
    assert resource(template, "LogGroup")["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_stack_takes_the_parameters_an_operator_sets(template: dict[str, Any]) -> None:
    assert {
        "SubnetIds",
        "SecurityGroupIds",
        "ImageUri",
        "ScheduleExpression",
        "ScheduleTimezone",
        "AlarmEmail",
        "DatabaseSecretArn",
        "ApiKeySecretArn",
        "MaxVcpus",
        "RunRetentionDays",
    } <= set(template["Parameters"])
    secret_arn = re.compile(template["Parameters"]["DatabaseSecretArn"]["AllowedPattern"])
    assert secret_arn.match(DATABASE_SECRET)
    assert not secret_arn.match("worthy/db"), "json-key references need the full ARN"
    image = re.compile(template["Parameters"]["ImageUri"]["AllowedPattern"])
    assert image.match(PARAMETERS["ImageUri"])


def test_the_planner_estimates_pricing_against_the_executors_own_timeout_and_rates(
    job_definitions: dict[str, dict[str, Any]], template: dict[str, Any]
) -> None:
    def environment(stage: str) -> dict[str, str]:
        container = resolve(template, job_definitions[stage]["ContainerProperties"], PARAMETERS)
        return {e["Name"]: str(e["Value"]) for e in container["Environment"]}

    executor = resolve(template, job_definitions["executor"], PARAMETERS)
    planner = environment("planner")
    timeout = executor["Timeout"]["AttemptDurationSeconds"]
    assert planner["EXECUTOR_TIMEOUT_SECONDS"] == str(timeout)
    # A provider rate set for the executors must reach the planner's estimate too.
    rates = {k: v for k, v in environment("executor").items() if "_CALLS_PER_" in k}
    assert rates == {k: v for k, v in planner.items() if "_CALLS_PER_" in k}


def test_max_children_is_what_the_compute_environment_runs_at_once(
    template: dict[str, Any], job_definitions: dict[str, dict[str, Any]]
) -> None:
    from decimal import Decimal

    from common.domain.chunking import TEMPLATE_MAX_CHILDREN

    defaults = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    at_once = Decimal(str(defaults["MaxVcpus"])) / Decimal(defaults["JobVcpus"])
    assert int(at_once) == defaults["MaxChildren"] == TEMPLATE_MAX_CHILDREN
    planner = resolve(template, job_definitions["planner"])
    environment = {v["Name"]: v["Value"] for v in planner["ContainerProperties"]["Environment"]}
    assert environment["MAX_CHILDREN"] == TEMPLATE_MAX_CHILDREN


def test_the_batch_emulator_leaves_the_outside_worlds_settings_to_the_local_environment(
    template: dict[str, Any],
) -> None:
    """The provider plans and the trust store describe the real providers and RDS; locally
    the stub's limits and the embedded server apply (devkit/batch/stack.py)."""
    from devkit.batch.stack import job_definitions as emulated

    definitions = {d.name.rsplit("-", 1)[1]: d for d in emulated(template)}
    assert set(definitions) == {"planner", "executor", "finalizer", "watchdog"}
    for stage, definition in definitions.items():
        assert definition.environment["LOG_FORMAT"] == "json", stage
        assert not [k for k in definition.environment if "_CALLS_PER_" in k], stage
        assert "DATABASE_SSLROOTCERT" not in definition.environment, stage
