#!/usr/bin/env bash
# Build, tag and push the worthy-batch image, then deploy infra/template.yaml
# through a change set that is shown before it runs. `infra/deploy.sh --help`
# explains; docs/deploy.md "Deploy" has the everyday commands (make deploy, make smoke).
set -euo pipefail

PROG=deploy.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# CloudFormation takes a TemplateBody of at most 51,200 bytes; the template is
# sent without its comments (tests/integration/test_deploy_scripts.py checks
# that it then fits and means the same), or through S3 (--template-bucket).
TEMPLATE=$ROOT/infra/template.yaml
BODY_LIMIT=51200

usage() {
  cat <<'USAGE'
Usage: infra/deploy.sh [options]

Builds the image (docker/Dockerfile) for the stack's CPU architecture, pushes
it to the stack's ECR repository tagged with the git commit, waits for ECR's
scan of it (basic scanning reports COMPLETE, enhanced scanning with Amazon
Inspector reports ACTIVE), and deploys infra/template.yaml through a change
set: its changes are printed, then it is executed. A scan with HIGH or
CRITICAL findings stops the deploy (also a roll back to such an image) unless
--accept-scan-findings is given. Run it from a clean checkout of what you mean
to ship.

The schedules' state is set on every run: ENABLED unless --schedule-state
DISABLED is given. The first deploy creates the stack with its schedules
disabled, pushes and scans the image, then enables them; a rerun after a
stopped first deploy enables them once the image passes. The script ends
non-zero, saying so, whenever the schedules are left disabled without
--schedule-state DISABLED. Later deploys reuse the stack's values for every
other parameter not given.

Required on the first deploy:
  --subnets ID,ID               subnets of the Fargate tasks
  --security-groups ID[,ID]     their security groups
  --alarm-email ADDRESS         where failed-job and missed-schedule alarms go
  --database-secret-arn ARN     secret whose value is the DATABASE_URL (full ARN)
  --api-key-secret-arn ARN      JSON secret with FINNHUB_API_KEY, ALPHA_VANTAGE_API_KEY,
                                EXCHANGE_RATE_API_KEY (full ARN)
Options:
  --plan                        show the change set and stop: nothing is built, pushed
                                or changed (the change set is deleted again)
  --profile NAME                AWS CLI profile
  --region REGION               AWS region (default: AWS_REGION, else the profile's)
  --stack-name NAME             stack, ECR repository and job definition prefix
                                (lowercase; default: worthy-batch)
  --image-tag TAG               tag to build and deploy (default: the git commit)
  --skip-build                  deploy TAG as it already is in the repository (roll back)
  --accept-scan-findings        deploy even if ECR's scan of the image reports HIGH or
                                CRITICAL findings, or did not complete (say why in the log)
  --scan-timeout SECONDS        how long to wait for the scan (default: 1200)
  --template-bucket BUCKET      pass the template through this S3 bucket (needed only
                                when it outgrows CloudFormation's 51,200-byte body)
  --architecture ARCH           x86_64 or arm64: the image's platform and the jobs'
                                CpuArchitecture (default: the stack's, else x86_64)
  --max-vcpus N                 compute environment cap (MaxVcpus)
  --schedule EXPR               e.g. 'cron(35 9 ? * MON-FRI *)' (ScheduleExpression)
  --timezone TZ                 e.g. America/New_York (ScheduleTimezone)
  --schedule-state STATE        ENABLED (default, on every run) or DISABLED (ScheduleState)
  --run-retention-days N        days runs stay in S3 (RunRetentionDays)
  --assign-public-ip STATE      ENABLED for public subnets without NAT (AssignPublicIp)
  --secrets-kms-key-arn ARN     customer-managed key of the secrets (SecretsKmsKeyArn)
  --cost-centre NAME            the CostCentre tag of every resource
  --parameter KEY=VALUE         any other template parameter (repeatable)
  -h, --help                    this help

Exit codes: 0 deployed (or planned); 1 deployed, but the schedules are
disabled though nobody asked for it; 78 refused or stopped (one line says why).
USAGE
}

die() {
  echo "$PROG: $*" >&2
  exit 78
}

# One line per step, so the log shows what each step did.
step() {
  echo "$PROG: $*"
}

profile="" region="" stack="worthy-batch" tag="" skip_build=false accept_findings=false
plan_only=false scan_timeout=1200 architecture="" template_bucket=""
overrides=() # KEY=VALUE template parameters; plain arrays only, for macOS's bash 3.2

set_param() {
  local kept=() pair
  for pair in ${overrides[@]+"${overrides[@]}"}; do
    [[ ${pair%%=*} == "$1" ]] || kept+=("$pair")
  done
  overrides=(${kept[@]+"${kept[@]}"} "$1=$2")
}

given() {
  local pair
  for pair in ${overrides[@]+"${overrides[@]}"}; do
    [[ ${pair%%=*} != "$1" ]] || return 0
  done
  return 1
}

param() {
  local pair
  for pair in ${overrides[@]+"${overrides[@]}"}; do
    if [[ ${pair%%=*} == "$1" ]]; then
      printf '%s' "${pair#*=}"
      return
    fi
  done
}

while (($#)); do
  option=$1
  case $option in
    -h | --help) usage; exit 0 ;;
    --skip-build) skip_build=true; shift; continue ;;
    --accept-scan-findings) accept_findings=true; shift; continue ;;
    --plan) plan_only=true; shift; continue ;;
  esac
  (($# >= 2)) || die "$option needs a value (see --help)"
  value=$2
  shift 2
  case $option in
    --profile) profile=$value ;;
    --region) region=$value ;;
    --stack-name) stack=$value ;;
    --image-tag) tag=$value ;;
    --scan-timeout) scan_timeout=$value ;;
    --template-bucket) template_bucket=$value ;;
    --architecture) architecture=$value ;;
    --subnets) set_param SubnetIds "$value" ;;
    --security-groups) set_param SecurityGroupIds "$value" ;;
    --alarm-email) set_param AlarmEmail "$value" ;;
    --database-secret-arn) set_param DatabaseSecretArn "$value" ;;
    --api-key-secret-arn) set_param ApiKeySecretArn "$value" ;;
    --max-vcpus) set_param MaxVcpus "$value" ;;
    --schedule) set_param ScheduleExpression "$value" ;;
    --timezone) set_param ScheduleTimezone "$value" ;;
    --schedule-state) set_param ScheduleState "$value" ;;
    --run-retention-days) set_param RunRetentionDays "$value" ;;
    --assign-public-ip) set_param AssignPublicIp "$value" ;;
    --secrets-kms-key-arn) set_param SecretsKmsKeyArn "$value" ;;
    --cost-centre) set_param CostCentre "$value" ;;
    --parameter)
      [[ $value == ?*=* ]] || die "--parameter takes KEY=VALUE, got '$value'"
      set_param "${value%%=*}" "${value#*=}"
      ;;
    *) die "unknown option $option (see --help)" ;;
  esac
done

[[ $stack =~ ^[a-z][a-z0-9-]{0,100}$ ]] \
  || die "--stack-name '$stack' must be lowercase letters, digits and dashes (it names the ECR repository)"
[[ $scan_timeout =~ ^[0-9]+$ ]] || die "--scan-timeout takes seconds, got '$scan_timeout'"
wanted_state=$(param ScheduleState)
wanted_state=${wanted_state:-ENABLED}
[[ $wanted_state == ENABLED || $wanted_state == DISABLED ]] \
  || die "--schedule-state takes ENABLED or DISABLED, got '$wanted_state'"
case $(printf '%s' "$architecture" | tr '[:upper:]' '[:lower:]') in
  "") ;;
  x86_64 | amd64) set_param CpuArchitecture X86_64 ;;
  arm64 | aarch64) set_param CpuArchitecture ARM64 ;;
  *) die "--architecture takes x86_64 or arm64, got '$architecture'" ;;
esac

needed=(aws)
$skip_build || $plan_only || needed+=(docker)
[[ -n $tag ]] || needed+=(git)
for tool in "${needed[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (install it, or see --help)"
done

aws_() {
  local scope=()
  [[ -z $profile ]] || scope+=(--profile "$profile")
  [[ -z $region ]] || scope+=(--region "$region")
  aws ${scope[@]+"${scope[@]}"} "$@"
}

if [[ -z $tag ]]; then
  [[ -z $(git -C "$ROOT" status --porcelain) ]] \
    || die "the working tree has uncommitted changes; commit them (the image is tagged with the commit) or pass --image-tag"
  tag=$(git -C "$ROOT" rev-parse --short=12 HEAD)
fi

[[ -n $region ]] || region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
[[ -n $region ]] || region=$(aws_ configure get region || true)
[[ -n $region ]] || die "no AWS region: pass --region or set one in the profile"
account=$(aws_ sts get-caller-identity --query Account --output text 2>&1) \
  || die "AWS credentials do not work: ${account##*$'\n'}"
step "account $account, region $region, stack $stack"

# The stack's status and its current parameters (KEY<TAB>VALUE lines); a stack
# left in REVIEW_IN_PROGRESS by an interrupted plan has none and counts as new.
stack_status=$(aws_ cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].StackStatus' --output text 2>/dev/null) || stack_status=""
[[ $stack_status != REVIEW_IN_PROGRESS ]] || stack_status=""
case $stack_status in
  ROLLBACK_COMPLETE | ROLLBACK_FAILED | DELETE_FAILED)
    die "stack $stack is $stack_status (its creation or deletion failed; nothing runs): delete it (aws cloudformation delete-stack --stack-name $stack) and deploy again" ;;
  *_IN_PROGRESS)
    die "stack $stack is $stack_status: wait until it is done (aws cloudformation wait), then deploy again" ;;
esac
stack_params=""
if [[ -n $stack_status ]]; then
  stack_params=$(aws_ cloudformation describe-stacks --stack-name "$stack" \
    --query 'Stacks[0].Parameters[].[ParameterKey,ParameterValue]' --output text)
  step "stack $stack exists ($stack_status)"
else
  missing=()
  for pair in SubnetIds:--subnets SecurityGroupIds:--security-groups AlarmEmail:--alarm-email \
    DatabaseSecretArn:--database-secret-arn ApiKeySecretArn:--api-key-secret-arn; do
    [[ -n $(param "${pair%%:*}") ]] || missing+=("${pair#*:}")
  done
  ((${#missing[@]} == 0)) || die "stack $stack does not exist yet; its first deploy needs ${missing[*]}"
  step "stack $stack does not exist yet: first deploy"
fi

stack_param() {
  awk -F '\t' -v key="$1" '$1 == key { print $2 }' <<<"$stack_params"
}

# The image is built for the architecture the jobs will run on.
cpu=$(param CpuArchitecture)
[[ -n $cpu ]] || cpu=$(stack_param CpuArchitecture)
cpu=${cpu:-X86_64}
case $cpu in
  ARM64) platform=linux/arm64 ;;
  *) platform=linux/amd64 ;;
esac

registry="$account.dkr.ecr.$region.amazonaws.com"
image="$registry/$stack:$tag"
set_param ImageUri "$image"
set_param ScheduleState "$wanted_state"

template_parameters() {
  awk '/^Parameters:/ { inside = 1; next } /^[^ #]/ { inside = 0 }
       inside && /^  [A-Za-z0-9]+:/ { sub(/^  /, ""); sub(/:.*/, ""); print }' "$TEMPLATE"
}

json_string() {
  local text=${1//\\/\\\\}
  text=${text//\"/\\\"}
  printf '"%s"' "$text"
}

# The change set's parameters: the given ones, and every other parameter the
# stack already has kept at its previous value.
parameters_file() {
  local out=$1 key value first=true
  {
    printf '['
    while read -r key; do
      value=$(param "$key")
      if given "$key"; then
        $first || printf ','
        printf '{"ParameterKey":"%s","ParameterValue":%s}' "$key" "$(json_string "$value")"
        first=false
      elif [[ -n $stack_status ]] && awk -F '\t' -v k="$key" '$1 == k { found = 1 } END { exit !found }' <<<"$stack_params"; then
        $first || printf ','
        printf '{"ParameterKey":"%s","UsePreviousValue":true}' "$key"
        first=false
      fi
    done < <(template_parameters)
    printf ']\n'
  } >"$out"
}

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
sed -e '/^[[:space:]]*#/d' -e 's/[[:space:]][[:space:]]*#[[:space:]].*$//' \
  "$TEMPLATE" >"$workdir/template.yaml"
template_source=(--template-body "file://$workdir/template.yaml")
body_bytes=$(wc -c <"$workdir/template.yaml" | tr -d ' ')
if [[ -n $template_bucket ]]; then
  template_key="$stack/templates/$tag-$(date -u +%Y%m%d%H%M%S).yaml"
  aws_ s3 cp --only-show-errors "$workdir/template.yaml" "s3://$template_bucket/$template_key" \
    || die "cannot upload the template to s3://$template_bucket/$template_key"
  template_source=(--template-url "https://$template_bucket.s3.$region.amazonaws.com/$template_key")
  step "template uploaded to s3://$template_bucket/$template_key"
elif ((body_bytes > BODY_LIMIT)); then
  die "the template is $body_bytes bytes without comments, over CloudFormation's $BODY_LIMIT-byte body limit; pass --template-bucket BUCKET (an S3 bucket you own in $region)"
fi

# Create a change set, print its changes, then execute it (or, with --plan,
# delete it). $1 says what the deploy is for.
deploy_stack() {
  local purpose=$1 kind=UPDATE name reason
  [[ -n $stack_status ]] || kind=CREATE
  name="deploy-$(date -u +%Y%m%d%H%M%S)-$tag"
  name=${name//[^A-Za-z0-9-]/-}
  parameters_file "$workdir/parameters.json"
  step "change set $name ($kind, $purpose, ScheduleState=$(param ScheduleState))"
  aws_ cloudformation create-change-set --stack-name "$stack" --change-set-name "$name" \
    --change-set-type "$kind" "${template_source[@]}" \
    --parameters "file://$workdir/parameters.json" --capabilities CAPABILITY_IAM >/dev/null \
    || die "could not create a change set for stack $stack (see the error above)"
  if ! aws_ cloudformation wait change-set-create-complete --stack-name "$stack" \
    --change-set-name "$name" 2>/dev/null; then
    reason=$(aws_ cloudformation describe-change-set --stack-name "$stack" --change-set-name "$name" \
      --query StatusReason --output text 2>&1 || true)
    aws_ cloudformation delete-change-set --stack-name "$stack" --change-set-name "$name" >/dev/null 2>&1 || true
    if [[ $reason == *"didn't contain changes"* || $reason == *"No updates are to be performed"* ]]; then
      step "change set: no changes; stack $stack is up to date"
      return 0
    fi
    die "change set $name failed: ${reason##*$'\n'}"
  fi
  aws_ cloudformation describe-change-set --stack-name "$stack" --change-set-name "$name" \
    --query 'Changes[].ResourceChange.[Action,LogicalResourceId,ResourceType,Replacement]' \
    --output table
  if $plan_only; then
    aws_ cloudformation delete-change-set --stack-name "$stack" --change-set-name "$name" >/dev/null
    if [[ $kind == CREATE ]]; then
      # A CREATE change set leaves an empty stack in REVIEW_IN_PROGRESS behind.
      aws_ cloudformation delete-stack --stack-name "$stack" >/dev/null
    fi
    step "plan only: change set $name shown and deleted; nothing was changed"
    return 0
  fi
  aws_ cloudformation execute-change-set --stack-name "$stack" --change-set-name "$name" >/dev/null
  local waiter="stack-update-complete"
  [[ $kind == UPDATE ]] || waiter="stack-create-complete"
  if ! aws_ cloudformation wait "$waiter" --stack-name "$stack"; then
    die "stack $stack did not reach ${waiter#stack-} (CloudFormation rolls it back; aws cloudformation describe-stack-events --stack-name $stack says why)"
  fi
  stack_status=present
  stack_params=$(aws_ cloudformation describe-stacks --stack-name "$stack" \
    --query 'Stacks[0].Parameters[].[ParameterKey,ParameterValue]' --output text)
  step "stack $stack: change set $name executed"
}

image_in_repository() {
  aws_ ecr describe-images --repository-name "$stack" --image-ids "imageTag=$tag" >/dev/null 2>&1
}

push_image() {
  if image_in_repository; then
    step "$image is already in the repository (tags are immutable); not pushing"
    return
  fi
  aws_ ecr get-login-password | docker login --username AWS --password-stdin "$registry"
  docker push "$image"
  step "pushed $image"
}

# Where the schedules stand when the script stops early on a stack that exists.
schedule_note() {
  local state
  state=$(stack_param ScheduleState)
  [[ -n $state ]] || return 0
  printf '; the schedules stay %s' "$state"
  [[ $state == ENABLED ]] || printf ' until a deploy passes'
}

stop() {
  die "$*$(schedule_note)"
}

# ECR scans on push. Basic scanning ends in COMPLETE; enhanced scanning
# (Amazon Inspector) in ACTIVE, and keeps the findings up to date from then on
# (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageScanStatus.html).
# HIGH or CRITICAL findings stop the deploy unless --accept-scan-findings; so
# does a scan that did not complete.
scan_gate() {
  local mode status="" description deadline counts critical high ec eh
  mode=$(aws_ ecr get-registry-scanning-configuration \
    --query scanningConfiguration.scanType --output text 2>/dev/null) || mode=BASIC
  step "registry scanning: $mode; waiting for ECR's scan of $image"
  deadline=$((SECONDS + scan_timeout))
  while :; do
    status=$(aws_ ecr describe-image-scan-findings --repository-name "$stack" \
      --image-id "imageTag=$tag" --query 'imageScanStatus.[status,description]' \
      --output text 2>&1) || status="PENDING	${status##*$'\n'}"
    description=${status#*$'\t'}
    status=${status%%$'\t'*}
    [[ $description != None && $description != "$status" ]] || description=""
    case $status in
      COMPLETE | ACTIVE) break ;;
      PENDING | IN_PROGRESS) ;;
      *) break ;;
    esac
    if ((SECONDS >= deadline)); then
      status="still $status after ${scan_timeout}s"
      break
    fi
    sleep "${DEPLOY_SCAN_POLL_SECONDS:-15}"
  done
  if [[ $status != COMPLETE && $status != ACTIVE ]]; then
    local why="$status${description:+: $description}"
    [[ $mode != ENHANCED ]] \
      || why="$why (enhanced scanning scans only repositories its registry's scan filters match)"
    if $accept_findings; then
      step "warning: the scan did not complete ($why); deploying anyway (--accept-scan-findings)"
      return
    fi
    stop "ECR's scan of $image did not complete: $why; retry, or deploy with --accept-scan-findings"
  fi
  # Basic scanning counts findings by severity; enhanced scanning lists them
  # (enhancedFindings) and may count them too: the larger count of each wins.
  # shellcheck disable=SC2016 # the backticks are JMESPath literals, not the shell's
  counts=$(aws_ ecr describe-image-scan-findings --repository-name "$stack" \
    --image-id "imageTag=$tag" \
    --query '[imageScanFindings.findingSeverityCounts.CRITICAL, imageScanFindings.findingSeverityCounts.HIGH, length(imageScanFindings.enhancedFindings[?severity==`CRITICAL`] || `[]`), length(imageScanFindings.enhancedFindings[?severity==`HIGH`] || `[]`)]' \
    --output text) || stop "cannot read ECR's scan findings of $image"
  read -r critical high ec eh <<<"$counts"
  [[ $critical =~ ^[0-9]+$ ]] || critical=0
  [[ $high =~ ^[0-9]+$ ]] || high=0
  [[ ${ec:-} =~ ^[0-9]+$ ]] || ec=0
  [[ ${eh:-} =~ ^[0-9]+$ ]] || eh=0
  ((ec <= critical)) || critical=$ec
  ((eh <= high)) || high=$eh
  if ((critical + high == 0)); then
    step "scan $status: no HIGH or CRITICAL findings"
    return
  fi
  local found="$critical CRITICAL and $high HIGH finding(s)"
  if $accept_findings; then
    step "warning: $image has $found; deploying anyway (--accept-scan-findings)"
    return
  fi
  stop "$image has $found (aws ecr describe-image-scan-findings --repository-name $stack --image-id imageTag=$tag); rebuild on a patched base image, or deploy with --accept-scan-findings"
}

# The schedules as they are in AWS after the deploy, not as the template says.
check_schedules() {
  local logical physical state problems=()
  for logical in PlannerSchedule WatchdogSchedule; do
    physical=$(aws_ cloudformation describe-stack-resource --stack-name "$stack" \
      --logical-resource-id "$logical" \
      --query StackResourceDetail.PhysicalResourceId --output text 2>/dev/null) || continue
    state=$(aws_ scheduler get-schedule --name "$physical" --query State --output text 2>&1) \
      || state="unreadable (${state##*$'\n'})"
    step "schedule $logical ($physical): $state"
    [[ $state == "$wanted_state" ]] || problems+=("$logical is $state")
  done
  if ((${#problems[@]})); then
    echo "$PROG: deployed $image, but ${problems[*]}, not $wanted_state as asked: run infra/deploy.sh again, or aws scheduler update-schedule" >&2
    exit 1
  fi
}

if $plan_only; then
  step "plan for $image (nothing is built or pushed)"
  deploy_stack "plan"
  exit 0
fi

if $skip_build; then
  image_in_repository || die "$image is not in the repository; deploy it without --skip-build"
  step "roll back to $image (no build)"
  scan_gate
  deploy_stack "deploy $tag"
else
  step "building $image for $platform"
  docker build --platform "$platform" --file "$ROOT/docker/Dockerfile" --tag "$image" "$ROOT"
  step "built $image"
  if aws_ ecr describe-repositories --repository-names "$stack" >/dev/null 2>&1; then
    push_image
    scan_gate
    deploy_stack "deploy $tag"
  else
    # First deploy: the stack creates the repository, so it comes first, with
    # its schedules disabled until the image is pushed and passed its scan.
    set_param ScheduleState DISABLED
    deploy_stack "create the stack, schedules disabled until the image passes its scan"
    push_image
    scan_gate
    set_param ScheduleState "$wanted_state"
    deploy_stack "deploy $tag, schedules $wanted_state"
  fi
fi

aws_ cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text
check_schedules
step "done: $stack runs $image; schedules $wanted_state"
