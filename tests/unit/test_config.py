import pytest

from common.config import load_settings
from common.errors import ConfigError, ExitCode

ALL_VARIABLES = (
    "DATABASE_URL",
    "MANIFEST_BUCKET",
    "MANIFEST_PREFIX",
    "CHUNK_SIZE",
    "MAX_QUOTE_AGE_DAYS",
    "SHARE_DECIMALS",
    "FINNHUB_BASE_URL",
    "FINNHUB_API_KEY",
    "AWS_BATCH_JOB_ID",
    "FINNHUB_CALLS_PER_DAY",
    "ALPHA_VANTAGE_CALLS_PER_DAY",
    "EXCHANGE_RATE_CALLS_PER_DAY",
    "EXECUTOR_TIMEOUT_SECONDS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_follow_the_design() -> None:
    settings = load_settings()
    assert settings.chunk_size == 500
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
