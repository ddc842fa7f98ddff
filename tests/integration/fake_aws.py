"""A fake `aws` command for tests/integration/test_deploy_scripts.py.

It appends its argv to $FAKE_LOG and answers the calls infra/deploy.sh and
infra/smoke-test.sh make the way the AWS CLI does (text output of the
queries they pass). It keeps the account's state (the stack and its
parameters, change sets, pushed images) in the JSON file $FAKE_STATE, so a
second run of deploy.sh sees what the first left behind. FAKE_* variables
set the scene: an existing stack, scan results, failures.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, NoReturn

EMPTY: dict[str, Any] = {"stack": None, "change_sets": {}, "executed": [], "images": []}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else json.loads(json.dumps(EMPTY))


def main(argv: list[str]) -> int:
    env = os.environ.get
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(" ".join(["aws", *map(shlex.quote, argv)]) + "\n")
    args = list(argv)
    while len(args) > 1 and args[0] in ("--profile", "--region"):
        del args[:2]
    state_file = Path(os.environ["FAKE_STATE"])
    state = load(state_file)
    if env("FAKE_STACK_EXISTS") and state["stack"] is None:
        state["stack"] = {
            "ScheduleState": env("FAKE_STACK_SCHEDULE", "ENABLED"),
            "CpuArchitecture": env("FAKE_STACK_CPU", "X86_64"),
            "SubnetIds": "subnet-1,subnet-2",
        }
    if env("FAKE_IMAGE_EXISTS"):
        state["images"].append("*")

    def option(name: str, default: str = "") -> str:
        return args[args.index(name) + 1] if name in args else default

    def fail(message: str, code: int = 254) -> NoReturn:
        state_file.write_text(json.dumps(state))
        print(message, file=sys.stderr)
        sys.exit(code)

    command = " ".join(args[:2])
    query = option("--query")
    if command == "sts get-caller-identity":
        if env("FAKE_NO_CREDENTIALS"):
            fail("Unable to locate credentials.", 253)
        print("123456789012")
    elif command == "configure get":
        if env("FAKE_REGION"):
            print(env("FAKE_REGION"))
        else:
            fail("", 1)
    elif command == "cloudformation describe-stacks":
        if state["stack"] is None:
            fail("An error occurred (ValidationError): Stack with id worthy-batch does not exist")
        if "StackStatus" in query:
            print(env("FAKE_STACK_STATUS", "UPDATE_COMPLETE"))
        elif "Parameters" in query:
            print("\n".join(f"{k}\t{v}" for k, v in state["stack"].items()))
        else:
            print("JobQueueArn\tarn:aws:batch:eu-west-1:123456789012:job-queue/q")
            print("PlannerJobDefinition\tworthy-batch-planner")
            print("ExecutorJobDefinition\tworthy-batch-executor")
            print("FinalizerJobDefinition\tworthy-batch-finalizer")
            print("RunsBucketName\truns-bucket")
            print("ManifestPrefix\trecurring-investments")
    elif command == "cloudformation create-change-set":
        if "--template-url" in args:
            bucket, key = option("--template-url").removeprefix("https://").split("/", 1)
            body = state["s3"][f"s3://{bucket.split('.')[0]}/{key}"]
        else:
            body = Path(option("--template-body").removeprefix("file://")).read_text()
        parameters = json.loads(Path(option("--parameters").removeprefix("file://")).read_text())
        state["change_sets"][option("--change-set-name")] = {
            "type": option("--change-set-type"),
            "parameters": parameters,
        }
        state["last_template"] = body
    elif command == "cloudformation wait" and args[2] == "change-set-create-complete":
        if env("FAKE_NO_CHANGES"):
            fail("Waiter ChangeSetCreateComplete failed: terminal failure state", 255)
    elif command == "cloudformation describe-change-set":
        if query == "StatusReason":
            print("The submitted information didn't contain changes. Submit different information.")
        else:
            print("| Modify | PlannerSchedule | AWS::Scheduler::Schedule | False |")
    elif command == "cloudformation delete-change-set":
        state["change_sets"].pop(option("--change-set-name"))
    elif command == "cloudformation delete-stack":
        state["stack"] = None
        state.setdefault("deleted_stacks", []).append(option("--stack-name"))
    elif command == "cloudformation execute-change-set":
        change = state["change_sets"].pop(option("--change-set-name"))
        values = {}
        for parameter in change["parameters"]:
            key = parameter["ParameterKey"]
            if parameter.get("UsePreviousValue"):
                values[key] = state["stack"][key]
            else:
                values[key] = parameter["ParameterValue"]
        state["stack"] = values
        state["repository"] = True
        state["executed"].append(change)
    elif command == "cloudformation wait":
        if env("FAKE_STACK_FAILS"):
            fail("Waiter StackUpdateComplete failed: terminal failure state", 255)
    elif command == "cloudformation describe-stack-resource":
        if state["stack"] is None:
            fail("Stack does not exist")
        print(f"worthy-batch-{option('--logical-resource-id')}-ABC")
    elif command == "scheduler get-schedule":
        print(env("FAKE_SCHEDULE_STATE") or state["stack"]["ScheduleState"])
    elif command == "s3 cp":
        local, url = [a for a in args[2:] if not a.startswith("--")]
        state.setdefault("s3", {})[url] = Path(local).read_text()
    elif command == "ecr describe-repositories":
        if not (env("FAKE_REPO_EXISTS") or state.get("repository")):
            fail("An error occurred (RepositoryNotFoundException)")
    elif command == "ecr describe-images":
        tag = option("--image-ids").removeprefix("imageTag=")
        if tag not in state["images"] and "*" not in state["images"]:
            fail("An error occurred (ImageNotFoundException)")
    elif command == "ecr get-login-password":
        print("secret-token")
    elif command == "ecr get-registry-scanning-configuration":
        print(env("FAKE_SCAN_TYPE", "BASIC"))
    elif command == "ecr describe-image-scan-findings":
        if query.startswith("imageScanStatus"):
            polls = state.setdefault("scan_polls", 0)
            state["scan_polls"] = polls + 1
            if polls < int(env("FAKE_SCAN_PENDING_POLLS", "0")):
                print("IN_PROGRESS\tNone")
            else:
                status = env("FAKE_SCAN_STATUS", "COMPLETE")
                print(f"{status}\t{env('FAKE_SCAN_DESCRIPTION', 'None')}")
        else:
            counted = [env(k, "None") for k in ("FAKE_CRITICAL", "FAKE_HIGH")]
            listed = [env(k, "0") for k in ("FAKE_LISTED_CRITICAL", "FAKE_LISTED_HIGH")]
            print("\t".join(counted + listed))
    state_file.write_text(json.dumps(state))
    return 0


def push(tag: str) -> None:
    """What `docker push` leaves in the fake registry."""
    state_file = Path(os.environ["FAKE_STATE"])
    state = load(state_file)
    state["images"].append(tag)
    state_file.write_text(json.dumps(state))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--pushed"]:
        push(sys.argv[2])
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
