"""A run's identity: the key (market and day, the run id derived), where its files are, and
the day resolved as every command that takes a --market and a date resolves it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from common.domain.calendar import resolve_run_day
from common.domain.errors import ConfigError, ExitCode, ManifestError, RunDateRefused
from common.domain.run_key import RunKey, RunLocation

KEY = RunKey("XNYS", date(2026, 11, 27))
# 2026-12-01 20:00 in New York is already 2026-12-02 in UTC.
EVENING = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def test_the_run_id_names_the_market_and_day_and_parses_back() -> None:
    assert KEY.run_id == str(KEY) == "XNYS-20261127"
    assert RunKey.parse("XNYS-20261127") == KEY
    for bad in ("tomorrow", "XNYS-2026112", "-20261127", "XNYS-2026112x"):
        with pytest.raises(ValueError, match="not a run id"):
            RunKey.parse(bad)


def test_a_run_s_files_live_under_its_market_day_and_id() -> None:
    where = RunLocation.for_run("runs", "recurring-investments", KEY)
    assert where.manifest_uri == (
        "s3://runs/recurring-investments/XNYS/2026-11-27/XNYS-20261127/run.json"
    )
    assert where.run_id == KEY.run_id
    assert where.chunk_key(3).endswith("XNYS-20261127/chunks/00003.jsonl.gz")
    assert RunLocation.from_manifest_uri(where.manifest_uri) == where
    assert RunLocation.for_run("runs", "", KEY).prefix == "XNYS/2026-11-27/XNYS-20261127"
    with pytest.raises(ManifestError, match="not an s3://bucket"):
        RunLocation.from_manifest_uri("https://runs/XNYS/run.json")


def test_the_default_day_is_today_in_the_market_s_time_zone() -> None:
    day = resolve_run_day("XNYS", None, EVENING)
    assert (day.key, day.today, day.closed, day.catch_up) == (
        RunKey("XNYS", date(2026, 12, 1)),
        date(2026, 12, 1),
        None,
        False,
    )


def test_a_past_day_is_a_catch_up_and_a_closed_day_says_why() -> None:
    thanksgiving = resolve_run_day("XNYS", date(2026, 11, 26), EVENING)
    assert thanksgiving.catch_up
    assert thanksgiving.closed == "Thanksgiving Day"
    assert resolve_run_day("XNYS", date(2026, 11, 28), EVENING).closed == "weekend"


def test_refused_days_and_markets_are_configuration_errors_naming_the_option() -> None:
    with pytest.raises(RunDateRefused, match="is in the future") as future:
        resolve_run_day("XNYS", date(2026, 12, 3), EVENING)
    assert future.value.exit_code == ExitCode.CONFIG
    assert list(future.value.problems) == ["--run-date"]
    assert resolve_run_day("XNYS", date(2026, 12, 3), EVENING, allow_future=True).key == RunKey(
        "XNYS", date(2026, 12, 3)
    )
    with pytest.raises(ConfigError, match="XNAS plans run in the XNYS run") as secondary:
        resolve_run_day("XNAS", None, EVENING)
    assert list(secondary.value.problems) == ["--market"]
    with pytest.raises(ConfigError, match="unsupported market 'XXXX'") as unknown:
        resolve_run_day("XXXX", None, EVENING)
    assert isinstance(unknown.value, ValueError), "an option's parser reports it too"
