#!/usr/bin/env bash
# Run the canary through every role of the deployed stack, or plan a missed day.
# `infra/smoke-test.sh --help` explains.
set -euo pipefail

PROG=smoke-test.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<'USAGE'
Usage: infra/smoke-test.sh [options]

Runs the canary (worthy-batch submit --canary --wait): the deployed planner
plans a canary run on a weekend date (default: the last Saturday) with one
empty chunk and submits its executor and finalizer, so every role is proven:
the planner's SubmitJob, the executor's secrets (every provider key must be
set; no provider is called), its S3 reads and result write, the finalizer's
report, each against the database over TLS. It follows the jobs and their
logs, checks the report (succeeded, nothing bought) and cleans up after
itself: the finalizer deletes the canary's database rows, this script its
files in the runs bucket (every version). Exits 0 when all of that worked.

A --run-date on a weekday plans that day for real instead (no canary) and
needs --allow-market-day: the way to start a day the schedule missed.

Options:
  --profile NAME         AWS CLI profile
  --region REGION        AWS region (default: AWS_REGION, else the profile's)
  --stack-name NAME      default: worthy-batch
  --run-date YYYY-MM-DD  default: the last Saturday
  --allow-market-day     accept a weekday --run-date (it buys what is due)
  --timeout SECONDS      give up waiting after this long (default: 1800)
  -h, --help             this help
USAGE
}

die() {
  echo "$PROG: $*" >&2
  exit 78
}

profile="" region="" stack="worthy-batch" run_date="" market_day=false timeout=1800
while (($#)); do
  option=$1
  case $option in
    -h | --help) usage; exit 0 ;;
    --allow-market-day) market_day=true; shift; continue ;;
  esac
  (($# >= 2)) || die "$option needs a value (see --help)"
  value=$2
  shift 2
  case $option in
    --profile) profile=$value ;;
    --region) region=$value ;;
    --stack-name) stack=$value ;;
    --run-date) run_date=$value ;;
    --timeout) timeout=$value ;;
    *) die "unknown option $option (see --help)" ;;
  esac
done

cli=$(command -v worthy-batch || true)
[[ -n $cli ]] || [[ ! -x $ROOT/.venv/bin/worthy-batch ]] || cli=$ROOT/.venv/bin/worthy-batch
[[ -n $cli ]] || die "missing tool: worthy-batch (run make install, or put it on PATH)"
python=$(dirname "$cli")/python
[[ -x $python ]] || python=python3
command -v aws >/dev/null 2>&1 || die "missing tool: aws (install the AWS CLI)"

# Weekday of a date, or the last Saturday when none is given (0 = Monday).
read -r run_date weekday < <("$python" - "$run_date" <<'PY'
import sys
from datetime import date, timedelta

given = sys.argv[1]
try:
    day = date.fromisoformat(given) if given else date.today()
except ValueError:
    print("invalid", -1)
    raise SystemExit
if not given:
    day -= timedelta(days=(day.weekday() - 5) % 7)
print(day.isoformat(), day.weekday())
PY
)
[[ $run_date != invalid ]] || die "--run-date takes YYYY-MM-DD"
if ((weekday < 5)) && ! $market_day; then
  die "$run_date is a weekday: the planner would buy what is due; add --allow-market-day if you mean it"
fi

scope=()
[[ -z $profile ]] || scope+=(--profile "$profile")
[[ -z $region ]] || scope+=(--region "$region")
if ! outputs=$(aws ${scope[@]+"${scope[@]}"} cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text 2>&1); then
  die "cannot read the outputs of stack $stack: ${outputs##*$'\n'}"
fi

output() {
  awk -v key="$1" '$1 == key { print $2 }' <<<"$outputs"
}

[[ -z $profile ]] || export AWS_PROFILE=$profile
[[ -z $region ]] || export AWS_REGION=$region AWS_DEFAULT_REGION=$region
BATCH_JOB_QUEUE=$(output JobQueueArn)
PLANNER_JOB_DEFINITION=$(output PlannerJobDefinition)
EXECUTOR_JOB_DEFINITION=$(output ExecutorJobDefinition)
FINALIZER_JOB_DEFINITION=$(output FinalizerJobDefinition)
MANIFEST_BUCKET=$(output RunsBucketName)
MANIFEST_PREFIX=$(output ManifestPrefix)
export BATCH_JOB_QUEUE PLANNER_JOB_DEFINITION EXECUTOR_JOB_DEFINITION FINALIZER_JOB_DEFINITION \
  MANIFEST_BUCKET MANIFEST_PREFIX
[[ -n $BATCH_JOB_QUEUE && -n $PLANNER_JOB_DEFINITION ]] \
  || die "stack $stack has no JobQueueArn or PlannerJobDefinition output"

if ((weekday < 5)); then
  echo "$PROG: submitting $PLANNER_JOB_DEFINITION for $run_date to $BATCH_JOB_QUEUE"
  exec "$cli" submit --run-date "$run_date" --wait --timeout "$timeout"
fi
[[ -n $MANIFEST_BUCKET ]] || die "stack $stack has no RunsBucketName output"
echo "$PROG: running the canary for $run_date on $BATCH_JOB_QUEUE"
exec "$cli" submit --canary --run-date "$run_date" --wait --timeout "$timeout"
