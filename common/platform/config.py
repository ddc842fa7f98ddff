"""Settings: one pydantic-settings model, parsed once at the entrypoint.

Every variable of docs/design.md section 4, plus the tuning knobs documented in
docs/configuration.md. A malformed value or a missing required one raises `ConfigError`
naming every bad variable at once; values of secrets are never echoed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import urlsplit

import psycopg2.extensions
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.domain.errors import ConfigError

DEFAULT_FINNHUB_BASE_URL = "https://finnhub.io/api/v1"
DEFAULT_ALPHA_VANTAGE_BASE_URL = "https://www.alphavantage.co"
DEFAULT_EXCHANGE_RATE_BASE_URL = "https://v6.exchangerate-api.com/v6"

# Free-tier limits of each provider, in calls per minute, and Alpha Vantage's
# daily cap on its free tier. The limits are the account's, per API key: every
# child shares them (docs/market-data.md "Market data").
FINNHUB_FREE_CALLS_PER_MINUTE = 60
ALPHA_VANTAGE_FREE_CALLS_PER_MINUTE = 5
EXCHANGE_RATE_FREE_CALLS_PER_MINUTE = 60
ALPHA_VANTAGE_FREE_CALLS_PER_DAY = 25
UNLIMITED = "unlimited"  # a `*_CALLS_PER_DAY` value: no daily budget
# The executor job definition's Timeout.AttemptDurationSeconds (infra/template.yaml).
EXECUTOR_TIMEOUT_SECONDS = 3600
# The longest executor attempt the planner will submit (docs/operating.md "Timeouts"): a run that
# starts at 09:35 New York time must end well before the close, with room for a retry.
EXECUTOR_MAX_TIMEOUT_SECONDS = 4 * 3600

# The template's defaults for the jobs' Fargate size (infra/template.yaml parameters
# JobVcpus/JobMemoryMiB for executor and finalizer, PlannerVcpus/PlannerMemoryMiB for
# the planner): what a job assumes it has when JOB_VCPU/JOB_MEMORY_MIB are not set.
TEMPLATE_JOB_VCPU = Decimal("0.25")
TEMPLATE_JOB_MEMORY_MIB = 512
TEMPLATE_PLANNER_VCPU = Decimal("2")
TEMPLATE_PLANNER_MEMORY_MIB = 4096
# AWS Fargate on-demand, Linux/x86_64, us-east-1 (https://aws.amazon.com/fargate/pricing/,
# docs/sizing-and-cost.md "Cost per run" has the date): per vCPU-hour and GB-hour, billed per second
# from the image pull to the task's end, with a one-minute minimum a task.
FARGATE_VCPU_HOUR_USD = Decimal("0.04048")
FARGATE_GB_HOUR_USD = Decimal("0.004445")
FARGATE_MIN_BILLED_SECONDS = 60

# libpq's sslmode values (https://www.postgresql.org/docs/current/libpq-ssl.html).
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
# What an Amazon RDS secret holds (Secrets Manager's JSON structure for RDS PostgreSQL:
# engine, host, username, password, dbname, port); the managed rotation functions rewrite it.
RDS_SECRET_REQUIRED = ("host", "username", "password")
RDS_DEFAULT_PORT = 5432
RDS_DEFAULT_DBNAME = "postgres"

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
DailyBudget = Annotated[int, Field(ge=0)] | None  # None: unlimited
Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class Settings(BaseSettings):
    """The process configuration. Field `x_y` is read from the variable `X_Y`."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", env_ignore_empty=True, frozen=True
    )

    database_url: SecretStr | None = None
    database_sslmode: SslMode | None = None
    database_sslrootcert: str | None = None
    manifest_bucket: str | None = None
    manifest_prefix: str = "recurring-investments"

    batch_job_queue: str | None = None
    executor_job_definition: str | None = None
    finalizer_job_definition: str | None = None
    planner_job_definition: str | None = None

    finnhub_api_key: SecretStr | None = None
    alpha_vantage_api_key: SecretStr | None = None
    exchange_rate_api_key: SecretStr | None = None
    finnhub_base_url: str = DEFAULT_FINNHUB_BASE_URL
    alpha_vantage_base_url: str = DEFAULT_ALPHA_VANTAGE_BASE_URL
    exchange_rate_base_url: str = DEFAULT_EXCHANGE_RATE_BASE_URL
    finnhub_calls_per_minute: PositiveInt = FINNHUB_FREE_CALLS_PER_MINUTE
    alpha_vantage_calls_per_minute: PositiveInt = ALPHA_VANTAGE_FREE_CALLS_PER_MINUTE
    exchange_rate_calls_per_minute: PositiveInt = EXCHANGE_RATE_FREE_CALLS_PER_MINUTE
    finnhub_calls_per_day: DailyBudget = None
    alpha_vantage_calls_per_day: DailyBudget = ALPHA_VANTAGE_FREE_CALLS_PER_DAY
    exchange_rate_calls_per_day: DailyBudget = None
    executor_timeout_seconds: PositiveInt = EXECUTOR_TIMEOUT_SECONDS
    executor_max_timeout_seconds: PositiveInt = EXECUTOR_MAX_TIMEOUT_SECONDS
    provider_max_attempts: PositiveInt = 3
    provider_backoff_seconds: PositiveFloat = 0.5
    http_connect_timeout: PositiveFloat = 3.05
    http_read_timeout: PositiveFloat = 10.0

    chunk_size: PositiveInt | None = None  # None: the planner sizes chunks from the work
    max_children: PositiveInt | None = None  # None: what the compute environment runs at once
    max_quote_age_days: Annotated[int, Field(ge=0, le=366)] = 4
    share_decimals: Annotated[int, Field(ge=0, le=8)] = 6
    write_batch_size: PositiveInt = 1000
    write_connections: Annotated[int, Field(ge=1, le=8)] = 2
    price_fetch_threads: Annotated[int, Field(ge=1, le=64)] = 8
    db_connect_attempts: PositiveInt = 5
    # Read by the CLI before settings exist (logging starts first); declared here so that
    # a malformed LOG_FORMAT stops the command like any other bad setting.
    log_format: Literal["auto", "json", "text"] = "auto"
    local_parallelism: PositiveInt = Field(default_factory=lambda: os.cpu_count() or 2)
    planner_workers: PositiveInt | None = None  # None: sized from the container (planner)

    # docs/sizing-and-cost.md "Cost per run": this job's Fargate size (the job definition's
    # ResourceRequirements; None: the template's default for the stage) and the prices.
    job_vcpu: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)] | None = None
    job_memory_mib: PositiveInt | None = None
    fargate_vcpu_hour_usd: Price = FARGATE_VCPU_HOUR_USD
    fargate_gb_hour_usd: Price = FARGATE_GB_HOUR_USD
    fargate_min_billed_seconds: Annotated[int, Field(ge=0)] = FARGATE_MIN_BILLED_SECONDS
    finnhub_usd_per_call: Price = Decimal(0)  # 0: the free tier
    alpha_vantage_usd_per_call: Price = Decimal(0)
    exchange_rate_usd_per_call: Price = Decimal(0)

    # Set by AWS Batch (job_env_vars.html), by the job definition (JOB_ATTEMPTS: its
    # RetryStrategy's attempts), or by the planner in the child's environment.
    aws_batch_job_id: str | None = None
    aws_batch_job_array_index: Annotated[int, Field(ge=0)] | None = None
    aws_batch_job_attempt: Annotated[int, Field(ge=1)] | None = None
    job_attempts: PositiveInt | None = None
    redrive: PositiveInt | None = None
    chunk_index: Annotated[int, Field(ge=0)] | None = None
    manifest_uri: str | None = None

    @field_validator("database_url")
    @classmethod
    def _dsn_parses(cls, value: SecretStr | None) -> SecretStr | None:
        """A DSN or URL, or an RDS JSON secret turned into a DSN."""
        if value is None:
            return value
        dsn = dsn_from_secret(value.get_secret_value())
        try:
            psycopg2.extensions.parse_dsn(dsn)
        except psycopg2.ProgrammingError:
            # The parser's message quotes the DSN, which may hold a password.
            raise ValueError("not a PostgreSQL DSN (postgresql://user@host/db)") from None
        return SecretStr(dsn)

    @field_validator(
        "finnhub_calls_per_day",
        "alpha_vantage_calls_per_day",
        "exchange_rate_calls_per_day",
        mode="before",
    )
    @classmethod
    def _unlimited_is_none(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == UNLIMITED:
            return None
        return value

    @field_validator("finnhub_base_url", "alpha_vantage_base_url", "exchange_rate_base_url")
    @classmethod
    def _is_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("manifest_prefix")
    @classmethod
    def _clean_prefix(cls, value: str) -> str:
        return value.strip("/")

    @property
    def in_aws_batch(self) -> bool:
        return self.aws_batch_job_id is not None

    @property
    def last_attempt(self) -> bool:
        """Batch will not retry this job if it fails: its attempts are used up."""
        if self.aws_batch_job_attempt is None or self.job_attempts is None:
            return False
        return self.aws_batch_job_attempt >= self.job_attempts


def dsn_from_secret(value: str) -> str:
    """`value` itself when it is a DSN or URL; the DSN of an RDS JSON secret
    ({"engine", "host", "port", "username", "password", "dbname", ...}) otherwise.

    Errors name the fields, never their values.
    """
    if not value.lstrip().startswith("{"):
        return value
    try:
        fields = json.loads(value)
    except json.JSONDecodeError:
        raise ValueError("starts like an RDS JSON secret but is not valid JSON") from None
    if not isinstance(fields, dict):
        raise ValueError("not a JSON object")
    missing = [name for name in RDS_SECRET_REQUIRED if not fields.get(name)]
    if missing:
        raise ValueError(f"RDS JSON secret without {', '.join(missing)}")
    if not str(fields.get("engine", "postgres")).startswith(("postgres", "aurora-postgresql")):
        raise ValueError("RDS JSON secret of an engine that is not PostgreSQL")
    port = fields.get("port") or RDS_DEFAULT_PORT
    if not str(port).isdigit() or not 0 < int(port) < 65536:
        raise ValueError("RDS JSON secret with a port that is not a TCP port")
    dsn: str = psycopg2.extensions.make_dsn(
        host=str(fields["host"]),
        port=int(port),
        user=str(fields["username"]),
        password=str(fields["password"]),
        dbname=str(fields.get("dbname") or RDS_DEFAULT_DBNAME),
    )
    return dsn


def load_settings(required: Iterable[str] = ()) -> Settings:
    """Parse the environment; raise `ConfigError` naming every bad or missing variable."""
    problems: dict[str, str] = {}
    settings: Settings | None = None
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "?"
            problems[name.upper()] = _short(error["msg"])
    for name in required:
        value = getattr(settings, name, None) if settings else os.environ.get(name.upper())
        if value in (None, ""):
            problems.setdefault(name.upper(), "missing")
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


def require(settings: Settings, required: Iterable[str]) -> Settings:
    """`settings` when each of `required` is set; else a `ConfigError` naming the missing."""
    missing = {n.upper(): "missing" for n in required if getattr(settings, n, None) in (None, "")}
    if missing:
        raise ConfigError(missing)
    return settings


def _short(message: str) -> str:
    return message.replace("Value error, ", "").rstrip(".")
