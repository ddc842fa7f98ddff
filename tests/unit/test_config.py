import json

import psycopg2.extensions
import pytest

from common.domain.errors import ConfigError, ExitCode
from common.platform.config import load_settings

ALL_VARIABLES = (
    "DATABASE_URL",
    "MANIFEST_BUCKET",
    "MANIFEST_PREFIX",
    "CHUNK_SIZE",
    "MAX_CHILDREN",
    "MAX_QUOTE_AGE_DAYS",
    "SHARE_DECIMALS",
    "FINNHUB_BASE_URL",
    "FINNHUB_API_KEY",
    "AWS_BATCH_JOB_ID",
    "FINNHUB_CALLS_PER_DAY",
    "ALPHA_VANTAGE_CALLS_PER_DAY",
    "EXCHANGE_RATE_CALLS_PER_DAY",
    "EXECUTOR_TIMEOUT_SECONDS",
    "DATABASE_SSLMODE",
    "DATABASE_SSLROOTCERT",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_follow_the_design() -> None:
    settings = load_settings()
    # docs/design.md section 4: CHUNK_SIZE, MAX_CHILDREN unset: chunks are sized from the work.
    assert settings.chunk_size is None and settings.max_children is None
    assert settings.max_quote_age_days == 4
    assert settings.share_decimals == 6
    assert settings.manifest_prefix == "recurring-investments"
    assert settings.finnhub_base_url == "https://finnhub.io/api/v1"
    assert settings.alpha_vantage_base_url == "https://www.alphavantage.co"
    assert settings.exchange_rate_base_url == "https://v6.exchangerate-api.com/v6"


def test_every_bad_variable_is_named_in_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUNK_SIZE", "lots")
    monkeypatch.setenv("SHARE_DECIMALS", "12")
    monkeypatch.setenv("FINNHUB_BASE_URL", "ftp://example.com")
    with pytest.raises(ConfigError) as caught:
        load_settings(required=["manifest_bucket"])
    assert caught.value.exit_code == ExitCode.CONFIG
    assert set(caught.value.problems) == {
        "CHUNK_SIZE",
        "SHARE_DECIMALS",
        "FINNHUB_BASE_URL",
        "MANIFEST_BUCKET",
    }
    message = str(caught.value)
    assert "\n" not in message
    assert "MANIFEST_BUCKET: missing" in message


def test_a_malformed_dsn_is_reported_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "hunter2-not-a-dsn")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "DATABASE_URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_secrets_do_not_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINNHUB_API_KEY", "sentinel-finnhub-key")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:sentinel-password@db/worthy")
    settings = load_settings()
    assert "sentinel" not in repr(settings)
    assert settings.finnhub_api_key is not None
    assert settings.finnhub_api_key.get_secret_value() == "sentinel-finnhub-key"


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUNK_SIZE", "")
    monkeypatch.setenv("MANIFEST_BUCKET", "")
    with pytest.raises(ConfigError) as caught:
        load_settings(required=["manifest_bucket"])
    assert set(caught.value.problems) == {"MANIFEST_BUCKET"}


def test_daily_budgets_default_to_alpha_vantages_free_tier_and_unlimited_elsewhere() -> None:
    settings = load_settings()
    assert settings.alpha_vantage_calls_per_day == 25
    assert settings.finnhub_calls_per_day is None
    assert settings.exchange_rate_calls_per_day is None
    assert settings.executor_timeout_seconds == 3600


def test_a_daily_budget_is_a_count_or_unlimited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHA_VANTAGE_CALLS_PER_DAY", "Unlimited")
    monkeypatch.setenv("FINNHUB_CALLS_PER_DAY", "0")
    monkeypatch.setenv("EXCHANGE_RATE_CALLS_PER_DAY", "50")
    settings = load_settings()
    assert settings.alpha_vantage_calls_per_day is None
    assert settings.finnhub_calls_per_day == 0
    assert settings.exchange_rate_calls_per_day == 50
    monkeypatch.setenv("EXCHANGE_RATE_CALLS_PER_DAY", "plenty")
    monkeypatch.setenv("FINNHUB_CALLS_PER_DAY", "-1")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"EXCHANGE_RATE_CALLS_PER_DAY", "FINNHUB_CALLS_PER_DAY"}


RDS_SECRET = {
    "engine": "postgres",
    "host": "db.abc123.us-east-1.rds.amazonaws.com",
    "port": 5432,
    "username": "worthy_batch",
    "password": "sentinel-rotated-password",
    "dbname": "worthy",
    "dbInstanceIdentifier": "worthy-db",
}


def test_an_rds_json_secret_is_read_as_its_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets Manager's structure for RDS PostgreSQL, as managed rotation writes it:
    https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_secret_json_structure.html"""
    monkeypatch.setenv("DATABASE_URL", json.dumps(RDS_SECRET | {"port": "6543"}))
    settings = load_settings()
    assert settings.database_url is not None
    params = psycopg2.extensions.parse_dsn(settings.database_url.get_secret_value())
    assert params == {
        "host": "db.abc123.us-east-1.rds.amazonaws.com",
        "port": "6543",
        "user": "worthy_batch",
        "password": "sentinel-rotated-password",
        "dbname": "worthy",
    }


def test_an_rds_secret_without_dbname_or_port_gets_rds_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = {k: v for k, v in RDS_SECRET.items() if k not in ("dbname", "port")}
    monkeypatch.setenv("DATABASE_URL", json.dumps(secret))
    settings = load_settings()
    assert settings.database_url is not None
    params = psycopg2.extensions.parse_dsn(settings.database_url.get_secret_value())
    assert (params["dbname"], params["port"]) == ("postgres", "5432")


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ('{"host": "db", "username": "u", "password": "sentinel-x"', "not valid JSON"),
        (json.dumps({"host": "db", "password": "sentinel-x"}), "without username"),
        (json.dumps(RDS_SECRET | {"password": ""}), "without password"),
        (json.dumps(RDS_SECRET | {"engine": "mysql"}), "not PostgreSQL"),
        (json.dumps(RDS_SECRET | {"port": "sentinel-port"}), "not a TCP port"),
    ],
)
def test_a_bad_rds_secret_is_named_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, secret: str, problem: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", secret)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert problem in caught.value.problems["DATABASE_URL"]
    assert "sentinel" not in str(caught.value)
    assert caught.value.exit_code == ExitCode.CONFIG


def test_a_tls_mode_libpq_does_not_know_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_SSLMODE", "verify")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"DATABASE_SSLMODE"}
