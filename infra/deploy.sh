#!/usr/bin/env bash
# Build, tag and push the worthy-batch image, then deploy infra/template.yaml.
# `infra/deploy.sh --help` explains; README "Deploy" has the everyday commands.
set -euo pipefail

PROG=deploy.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<'USAGE'
Usage: infra/deploy.sh [options]

Builds the image (docker/Dockerfile), pushes it to the stack's ECR repository
tagged with the git commit, waits for ECR's scan of it, and deploys
infra/template.yaml with `aws cloudformation deploy`. A scan with HIGH or
CRITICAL findings stops the deploy (also a roll back to such an image) unless
--accept-scan-findings is given. Run it from a clean checkout of what you mean
to ship. The first deploy needs the required parameters; later deploys reuse
the stack's values for every parameter not given. The first deploy creates the
stack with its schedule disabled, pushes and scans the image, then enables it.

Required on the first deploy:
  --subnets ID,ID               subnets of the Fargate tasks
  --security-groups ID[,ID]     their security groups
  --alarm-email ADDRESS         where failed-job and missed-schedule alarms go
  --database-secret-arn ARN     secret whose value is the DATABASE_URL (full ARN)
  --api-key-secret-arn ARN      JSON secret with FINNHUB_API_KEY, ALPHA_VANTAGE_API_KEY,
                                EXCHANGE_RATE_API_KEY (full ARN)
Options:
  --profile NAME                AWS CLI profile
  --region REGION               AWS region (default: AWS_REGION, else the profile's)
  --stack-name NAME             stack, ECR repository and job definition prefix
                                (lowercase; default: worthy-batch)
  --image-tag TAG               tag to build and deploy (default: the git commit)
  --skip-build                  deploy TAG as it already is in the repository (roll back)
  --accept-scan-findings        deploy even if ECR's scan of the image reports HIGH or
                                CRITICAL findings, or did not complete (say why in the log)
  --max-vcpus N                 compute environment cap (MaxVcpus)
  --schedule EXPR               e.g. 'cron(35 9 ? * MON-FRI *)' (ScheduleExpression)
  --timezone TZ                 e.g. America/New_York (ScheduleTimezone)
  --schedule-state STATE        ENABLED or DISABLED (ScheduleState)
  --run-retention-days N        days runs stay in S3 (RunRetentionDays)
  --assign-public-ip STATE      ENABLED for public subnets without NAT (AssignPublicIp)
  --secrets-kms-key-arn ARN     customer-managed key of the secrets (SecretsKmsKeyArn)
  --parameter KEY=VALUE         any other template parameter (repeatable)
  -h, --help                    this help
USAGE
}

die() {
  echo "$PROG: $*" >&2
  exit 78
}

profile="" region="" stack="worthy-batch" tag="" skip_build=false accept_findings=false
overrides=() # KEY=VALUE template parameters; plain arrays only, for macOS's bash 3.2

set_param() {
  local kept=() pair
  for pair in ${overrides[@]+"${overrides[@]}"}; do
    [[ ${pair%%=*} == "$1" ]] || kept+=("$pair")
  done
  overrides=(${kept[@]+"${kept[@]}"} "$1=$2")
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
  esac
  (($# >= 2)) || die "$option needs a value (see --help)"
  value=$2
  shift 2
  case $option in
    --profile) profile=$value ;;
    --region) region=$value ;;
    --stack-name) stack=$value ;;
    --image-tag) tag=$value ;;
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
    --parameter)
      [[ $value == ?*=* ]] || die "--parameter takes KEY=VALUE, got '$value'"
      set_param "${value%%=*}" "${value#*=}"
      ;;
    *) die "unknown option $option (see --help)" ;;
  esac
done

[[ $stack =~ ^[a-z][a-z0-9-]{0,100}$ ]] \
  || die "--stack-name '$stack' must be lowercase letters, digits and dashes (it names the ECR repository)"

needed=(aws)
$skip_build || needed+=(docker)
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

if ! aws_ cloudformation describe-stacks --stack-name "$stack" >/dev/null 2>&1; then
  missing=()
  for pair in SubnetIds:--subnets SecurityGroupIds:--security-groups AlarmEmail:--alarm-email \
    DatabaseSecretArn:--database-secret-arn ApiKeySecretArn:--api-key-secret-arn; do
    [[ -n $(param "${pair%%:*}") ]] || missing+=("${pair#*:}")
  done
  ((${#missing[@]} == 0)) || die "stack $stack does not exist yet; its first deploy needs ${missing[*]}"
fi

registry="$account.dkr.ecr.$region.amazonaws.com"
image="$registry/$stack:$tag"
set_param ImageUri "$image"

deploy_stack() {
  echo "$PROG: deploying stack $stack with $image"
  aws_ cloudformation deploy \
    --stack-name "$stack" \
    --template-file "$ROOT/infra/template.yaml" \
    --capabilities CAPABILITY_IAM \
    --no-fail-on-empty-changeset \
    --parameter-overrides "${overrides[@]}"
}

image_in_repository() {
  aws_ ecr describe-images --repository-name "$stack" --image-ids "imageTag=$tag" >/dev/null 2>&1
}

push_image() {
  if image_in_repository; then
    echo "$PROG: $image is already in the repository (tags are immutable); not pushing"
    return
  fi
  aws_ ecr get-login-password | docker login --username AWS --password-stdin "$registry"
  docker push "$image"
}

# ECR scans on push (ScanOnPush). HIGH or CRITICAL findings stop the deploy
# unless --accept-scan-findings; so does a scan that did not complete.
scan_gate() {
  local waited counts critical high
  echo "$PROG: waiting for ECR's scan of $image"
  if ! waited=$(aws_ ecr wait image-scan-complete --repository-name "$stack" \
    --image-id "imageTag=$tag" 2>&1); then
    if $accept_findings; then
      echo "$PROG: warning: the scan did not complete (${waited##*$'\n'}); deploying anyway (--accept-scan-findings)"
      return
    fi
    die "ECR's scan of $image did not complete: ${waited##*$'\n'}; retry, or deploy with --accept-scan-findings"
  fi
  counts=$(aws_ ecr describe-image-scan-findings --repository-name "$stack" \
    --image-id "imageTag=$tag" \
    --query 'imageScanFindings.findingSeverityCounts.[CRITICAL, HIGH]' --output text) \
    || die "cannot read ECR's scan findings of $image"
  read -r critical high <<<"$counts"
  [[ $critical =~ ^[0-9]+$ ]] || critical=0
  [[ $high =~ ^[0-9]+$ ]] || high=0
  if ((critical + high == 0)); then
    echo "$PROG: scan: no HIGH or CRITICAL findings"
    return
  fi
  local found="$critical CRITICAL and $high HIGH finding(s)"
  if $accept_findings; then
    echo "$PROG: warning: $image has $found; deploying anyway (--accept-scan-findings)"
    return
  fi
  die "$image has $found (aws ecr describe-image-scan-findings --repository-name $stack --image-id imageTag=$tag); rebuild on a patched base image, or deploy with --accept-scan-findings"
}

if $skip_build; then
  image_in_repository || die "$image is not in the repository; deploy it without --skip-build"
  scan_gate
  deploy_stack
else
  echo "$PROG: building $image"
  docker build --platform linux/amd64 --file "$ROOT/docker/Dockerfile" --tag "$image" "$ROOT"
  if aws_ ecr describe-repositories --repository-names "$stack" >/dev/null 2>&1; then
    push_image
    scan_gate
    deploy_stack
  else
    # First deploy: the stack creates the repository, so it comes first, with
    # its schedule disabled until the image is pushed and passed its scan.
    wanted_state=$(param ScheduleState)
    set_param ScheduleState DISABLED
    deploy_stack
    push_image
    scan_gate
    set_param ScheduleState "${wanted_state:-ENABLED}"
    deploy_stack
  fi
fi

aws_ cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text
echo "$PROG: done: $stack runs $image"
