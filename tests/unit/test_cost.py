"""A run's cost from its jobs' usage and API calls (finalizer/cost.py), in Decimals."""

from __future__ import annotations

from decimal import Decimal

from common.domain.models import JobUsage
from finalizer.cost import Prices, billed_seconds, cost_report, fargate_usd, total_usage

PRICES = Prices(
    vcpu_hour_usd=Decimal("0.04048"),
    gb_hour_usd=Decimal("0.004445"),
    min_billed_seconds=60,
    usd_per_call={"finnhub": Decimal("0.0001"), "alphavantage": Decimal(0)},
)


def _job(seconds: str, vcpu: str = "0.25", memory_mib: int = 512) -> JobUsage:
    return JobUsage(seconds=Decimal(seconds), vcpu=Decimal(vcpu), memory_mib=memory_mib)


def test_fargate_bills_whole_seconds_and_a_minute_at_least() -> None:
    assert billed_seconds(Decimal("0.4"), 60) == 60
    assert billed_seconds(Decimal("60.001"), 60) == 61
    assert billed_seconds(Decimal("90"), 60) == 90
    assert billed_seconds(Decimal("0.4"), 0) == 1


def test_usage_sums_vcpu_and_gb_seconds_measured_and_billed() -> None:
    usage = total_usage([_job("20", "2", 4096), _job("90.5"), _job("30")], 60)
    assert usage.jobs == 3
    assert usage.vcpu_seconds == Decimal("40") + Decimal("22.625") + Decimal("7.5")
    assert usage.gb_seconds == Decimal("80") + Decimal("45.25") + Decimal("15")
    assert usage.billed_vcpu_seconds == Decimal(120) + Decimal("22.75") + Decimal(15)
    assert usage.billed_gb_seconds == Decimal(240) + Decimal("45.5") + Decimal(30)


def test_an_hour_of_one_vcpu_and_one_gb_costs_the_two_hourly_prices() -> None:
    usage = total_usage([_job("3600", "1", 1024)], 60)
    assert fargate_usd(usage, PRICES) == Decimal("0.04048") + Decimal("0.004445")


def test_the_report_prices_calls_and_jobs_and_writes_strings() -> None:
    jobs = {"planner": [_job("10", "2", 4096)], "executor": [_job("45")] * 4, "finalizer": []}
    cost = cost_report(jobs, 1, {"finnhub": 100, "alphavantage": 3, "exchangerate": 2}, PRICES)
    # billed: planner 60 s x 2 vCPU; executors 4 x 60 s x 0.25 vCPU (0.5 GB each)
    fargate = (
        Decimal(120 + 60) * Decimal("0.04048") + Decimal(240 + 120) * Decimal("0.004445")
    ) / 3600
    assert cost["jobs"] == {"planner": 1, "executor": 4, "finalizer": 0}
    assert cost["unmeasured_jobs"] == 1
    assert cost["vcpu_seconds"] == "65.000"  # 10 x 2 + 4 x 45 x 0.25
    assert cost["gb_seconds"] == "130.000"  # 10 x 4 + 4 x 45 x 0.5
    assert cost["billed_vcpu_seconds"] == "180.000"
    assert fargate == Decimal("0.0024685")  # (7.2864 + 1.6002) / 3600, exactly
    assert cost["fargate_usd"] == "0.002469"  # half a millionth rounds up
    assert cost["providers_usd"] == {
        "alphavantage": "0.000000",
        "exchangerate": "0.000000",
        "finnhub": "0.010000",
    }
    assert cost["estimated_usd"] == "0.012469"
    assert cost["prices"]["fargate_vcpu_hour_usd"] == "0.04048"
