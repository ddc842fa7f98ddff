"""The stack: cfn-lint, and a deployment into moto's CloudFormation.

moto deploys the queue, the compute environment, the job definitions, the
bucket, the repository, the log group, the roles, the topic, the queue and the
rule. It skips the resource types it does not implement (the test names them,
so a new unsupported type is noticed) and drops some properties of the types
it does (job definitions' platform capabilities and timeouts, the bucket's
lifecycle, versioning and public access block); tests/unit/test_template.py
asserts all of those from the template instead.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.cfn import TEMPLATE, load_template

CFN_LINT = Path(sys.executable).with_name("cfn-lint")
REGION = "us-east-1"
STACK = "worthy-batch"
ACCOUNT = "123456789012"  # moto's default account
DATABASE_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:worthy/db-AbCdEf"
API_KEY_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:worthy/api-GhIjKl"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{STACK}:0123456789ab"

# moto 5 implements none of these in CloudFormation (it warns and skips them).
SKIPPED_BY_MOTO = {
    "AWS::Scheduler::Schedule",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::SQS::QueuePolicy",
}


def test_cfn_lint_reports_nothing() -> None:
    done = subprocess.run(
        [str(CFN_LINT), str(TEMPLATE)], capture_output=True, text=True, timeout=300, check=False
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    """In-process moto for this module: the tests only read the deployed stack."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        with mock_aws():
            yield


@pytest.fixture(scope="module")
def stack(aws: None) -> dict[str, str]:
    """Deploy the template; return its outputs."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24")["Subnet"]["SubnetId"]
        for i in (1, 2)
    ]
    group = ec2.create_security_group(GroupName="batch", Description="batch", VpcId=vpc)
    template = load_template()
    # moto requires a ServiceRole; AWS does not (Batch uses its service-linked
    # role when there is none, which is what the template relies on).
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(
        RoleName="moto-batch-service",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "batch.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    template["Resources"]["ComputeEnvironment"]["Properties"]["ServiceRole"] = role

    cloudformation = boto3.client("cloudformation", region_name=REGION)
    parameters = {
        "ImageUri": IMAGE,
        "SubnetIds": ",".join(subnets),
        "SecurityGroupIds": group["GroupId"],
        "DatabaseSecretArn": DATABASE_SECRET,
        "ApiKeySecretArn": API_KEY_SECRET,
        "AlarmEmail": "ops@example.com",
        "MaxVcpus": "16",
        "RunRetentionDays": "30",
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
    skipped = {
        str(w.message).split()[3]
        for w in caught
        if "not supported by moto's CloudFormation" in str(w.message)
    }
    assert skipped == SKIPPED_BY_MOTO
    (described,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    return {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}


def job_definitions() -> dict[str, dict[str, Any]]:
    batch = boto3.client("batch", region_name=REGION)
    found = batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    return {d["jobDefinitionName"]: d for d in found}


def test_the_stack_creates_a_fargate_queue_capped_by_max_vcpus(stack: dict[str, str]) -> None:
    batch = boto3.client("batch", region_name=REGION)
    (queue,) = batch.describe_job_queues(jobQueues=[stack["JobQueueArn"]])["jobQueues"]
    assert queue["state"] == "ENABLED"
    (order,) = queue["computeEnvironmentOrder"]
    (environment,) = batch.describe_compute_environments(
        computeEnvironments=[order["computeEnvironment"]]
    )["computeEnvironments"]
    assert environment["type"] == "MANAGED"
    assert environment["computeResources"]["type"] == "FARGATE"
    assert environment["computeResources"]["maxvCpus"] == 16
    assert len(environment["computeResources"]["subnets"]) == 2


def test_the_stack_registers_four_job_definitions_with_retries_and_secrets(
    stack: dict[str, str],
) -> None:
    found = job_definitions()
    assert set(found) == {
        stack[f"{s}JobDefinition"] for s in ("Planner", "Executor", "Finalizer", "Watchdog")
    }
    iam = boto3.client("iam", region_name=REGION)
    roles = {r["Arn"]: r for r in iam.list_roles()["Roles"]}
    commands = {}
    for name, definition in found.items():
        container = definition["containerProperties"]
        commands[name] = container["command"]
        assert container["image"] == IMAGE
        rules = {
            (r.get("onExitCode"), r.get("onStatusReason"), r["action"].upper())
            for r in definition["retryStrategy"]["evaluateOnExit"]
        }
        assert {("75", None, "RETRY"), ("*", None, "EXIT")} <= rules
        assert (None, "Task failed to start*", "RETRY") in rules
        assert definition["retryStrategy"]["attempts"] == 3
        secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
        assert secrets["DATABASE_URL"] == DATABASE_SECRET
        environment = {e["name"]: e["value"] for e in container["environment"]}
        assert not {"DATABASE_URL", "FINNHUB_API_KEY"} & set(environment)
        assert environment["MANIFEST_BUCKET"] == stack["RunsBucketName"]
        assert environment["BATCH_JOB_QUEUE"] == stack["JobQueueArn"]
        assert environment["LOG_FORMAT"] == "json"
        assert container["executionRoleArn"] in roles
        if name == "worthy-batch-watchdog":
            assert "jobRoleArn" not in container, "it reads the database only: no AWS access"
        else:
            assert container["jobRoleArn"] in roles
    assert commands == {
        "worthy-batch-planner": ["plan"],
        "worthy-batch-executor": ["execute"],
        "worthy-batch-finalizer": ["finalize", "--run-id", "Ref::run_id"],
        "worthy-batch-watchdog": ["watchdog"],
    }
    executor = found["worthy-batch-executor"]["containerProperties"]
    secrets = {s["name"]: s["valueFrom"] for s in executor["secrets"]}
    assert secrets["FINNHUB_API_KEY"] == f"{API_KEY_SECRET}:FINNHUB_API_KEY::"
    assert secrets["ALPHA_VANTAGE_API_KEY"] == f"{API_KEY_SECRET}:ALPHA_VANTAGE_API_KEY::"
    assert secrets["EXCHANGE_RATE_API_KEY"] == f"{API_KEY_SECRET}:EXCHANGE_RATE_API_KEY::"


def test_the_stack_creates_an_encrypted_runs_bucket(stack: dict[str, str]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    encryption = s3.get_bucket_encryption(Bucket=stack["RunsBucketName"])
    (rule,) = encryption["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_the_stack_creates_the_roles_with_their_trust(stack: dict[str, str]) -> None:
    iam = boto3.client("iam", region_name=REGION)
    trusted = {}
    for role in iam.list_roles()["Roles"]:
        if role["RoleName"].startswith(STACK):
            (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
            trusted[role["RoleName"]] = statement["Principal"]["Service"]
    by_logical_id = {name.split("-")[2]: service for name, service in trusted.items()}
    assert by_logical_id == {
        "ExecutionRole": "ecs-tasks.amazonaws.com",
        "PlannerJobRole": "ecs-tasks.amazonaws.com",
        "WorkerJobRole": "ecs-tasks.amazonaws.com",
        "SchedulerRole": "scheduler.amazonaws.com",
        "EventsSubmitRole": "events.amazonaws.com",
    }
    found = job_definitions()
    planner_role = found["worthy-batch-planner"]["containerProperties"]["jobRoleArn"]
    name = planner_role.rsplit("/", 1)[1]
    (policy,) = iam.list_role_policies(RoleName=name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
    if isinstance(document, str):  # moto keeps an inline policy from a template as str(dict)
        document = ast.literal_eval(document)
    submit = next(s for s in document["Statement"] if s["Action"] == "batch:SubmitJob")
    assert stack["JobQueueArn"] in submit["Resource"]


def test_the_stack_creates_the_repository_logs_and_alarm_plumbing(stack: dict[str, str]) -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    (repository,) = ecr.describe_repositories(repositoryNames=[STACK])["repositories"]
    # moto drops ImageScanningConfiguration given through CloudFormation.
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert stack["RepositoryUri"] == repository["repositoryUri"]
    logs = boto3.client("logs", region_name=REGION)
    (group,) = logs.describe_log_groups(logGroupNamePrefix=stack["LogGroupName"])["logGroups"]
    assert group["retentionInDays"] == 90
    sns = boto3.client("sns", region_name=REGION)
    assert stack["AlarmTopicArn"] in {t["TopicArn"] for t in sns.list_topics()["Topics"]}
    events = boto3.client("events", region_name=REGION)
    rules = {
        json.loads(r["EventPattern"])["detail"].get("jobDefinition") is None: r
        for r in events.list_rules()["Rules"]
    }
    rule = rules[True]  # the failed-jobs alarm (the other finalizes a failed executor's run)
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail"] == {
        "status": ["FAILED"],
        "jobQueue": [stack["JobQueueArn"]],
        "arrayProperties": {"index": [{"exists": False}]},
    }
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == stack["AlarmTopicArn"]
    sqs = boto3.client("sqs", region_name=REGION)
    assert sqs.get_queue_url(QueueName=stack["ScheduleDeadLetterQueueUrl"].rsplit("/", 1)[1])


def test_the_stack_creates_the_dashboard(stack: dict[str, str]) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    body = json.loads(
        cloudwatch.get_dashboard(DashboardName=stack["DashboardName"])["DashboardBody"]
    )
    assert len(body["widgets"]) >= 10
    queries = [w["properties"]["query"] for w in body["widgets"] if w["type"] == "log"]
    assert queries and all(q.startswith(f"SOURCE '{stack['LogGroupName']}'") for q in queries)


def test_undeliverable_rule_events_land_in_a_dead_letter_queue(stack: dict[str, str]) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = stack["EventsDeadLetterQueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    events = boto3.client("events", region_name=REGION)
    targets = [
        target
        for rule in events.list_rules()["Rules"]
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    ]
    assert len(targets) == 2
    for target in targets:
        assert target["DeadLetterConfig"] == {"Arn": attributes["QueueArn"]}, target["Id"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_resources_carry_the_project_stage_and_cost_centre_tags(stack: dict[str, str]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    tags = {
        t["Key"]: t["Value"]
        for t in s3.get_bucket_tagging(Bucket=stack["RunsBucketName"])["TagSet"]
    }
    assert {k: tags[k] for k in ("project", "stage", "cost-centre")} == {
        "project": "worthy-batch",
        "stage": "prod",
        "cost-centre": "unassigned",
    }
    sqs = boto3.client("sqs", region_name=REGION)
    queue_tags = sqs.list_queue_tags(QueueUrl=stack["EventsDeadLetterQueueUrl"])["Tags"]
    assert queue_tags["cost-centre"] == "unassigned"
    iam = boto3.client("iam", region_name=REGION)
    role = next(r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(STACK))
    role_tags = {
        t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=role["RoleName"])["Tags"]
    }
    assert role_tags["stage"] == "prod"
    # moto keeps no tags of Batch resources made by CloudFormation; tests/unit/test_template.py
    # checks every taggable resource of the template.
