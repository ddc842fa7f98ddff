"""A run's cost: its jobs' Fargate vCPU- and GB-seconds, its API calls, their price (pure).

Each job measured its own wall time from its process's start (common/adapters/jobclock.py)
and ran at its job definition's size. Fargate bills a task per second, rounded up,
for at least a minute (`min_billed_seconds`), from the image pull to the end: so
the billed figures round each job up to that, and the time before a process
starts (pulling the image, attaching the network) is not in them. Memory is
priced per GB of 1024 MiB, as Fargate sizes it. Money stays Decimal; the report
writes each figure as a string.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from common.domain.models import JobUsage

SECONDS_PER_HOUR = Decimal(3600)
MIB_PER_GB = Decimal(1024)
USD_PLACES = Decimal("0.000001")  # a millionth: a minute of the smallest task is $0.0002
SECONDS_PLACES = Decimal("0.001")


@dataclass(frozen=True)
class Prices:
    vcpu_hour_usd: Decimal
    gb_hour_usd: Decimal
    min_billed_seconds: int = 60
    usd_per_call: Mapping[str, Decimal] = field(default_factory=dict)  # provider -> price


@dataclass(frozen=True)
class Usage:
    """Jobs' usage summed: measured, and as Fargate bills it."""

    jobs: int = 0
    vcpu_seconds: Decimal = Decimal(0)
    gb_seconds: Decimal = Decimal(0)
    billed_vcpu_seconds: Decimal = Decimal(0)
    billed_gb_seconds: Decimal = Decimal(0)


def billed_seconds(seconds: Decimal, minimum: int) -> Decimal:
    """What Fargate bills for a task that ran `seconds`: whole seconds, at least `minimum`."""
    return Decimal(max(minimum, math.ceil(seconds)))


def total_usage(jobs: Iterable[JobUsage], min_billed_seconds: int) -> Usage:
    total = Usage()
    for job in jobs:
        gb = job.memory_mib / MIB_PER_GB
        billed = billed_seconds(job.seconds, min_billed_seconds)
        total = Usage(
            jobs=total.jobs + 1,
            vcpu_seconds=total.vcpu_seconds + job.seconds * job.vcpu,
            gb_seconds=total.gb_seconds + job.seconds * gb,
            billed_vcpu_seconds=total.billed_vcpu_seconds + billed * job.vcpu,
            billed_gb_seconds=total.billed_gb_seconds + billed * gb,
        )
    return total


def fargate_usd(usage: Usage, prices: Prices) -> Decimal:
    return (
        usage.billed_vcpu_seconds * prices.vcpu_hour_usd
        + usage.billed_gb_seconds * prices.gb_hour_usd
    ) / SECONDS_PER_HOUR


def providers_usd(api_calls: Mapping[str, int], prices: Prices) -> dict[str, Decimal]:
    """Provider -> calls times its price a call (a provider without a price: 0)."""
    return {
        provider: calls * prices.usd_per_call.get(provider, Decimal(0))
        for provider, calls in sorted(api_calls.items())
    }


def cost_report(
    jobs: Mapping[str, list[JobUsage]],
    unmeasured: int,
    api_calls: Mapping[str, int],
    prices: Prices,
) -> dict[str, Any]:
    """report.json's `cost`: `jobs` by stage (planner, executor, finalizer), the jobs whose
    usage is unknown (a chunk that never wrote a result), and the run's API calls."""
    usage = total_usage((j for stage in jobs.values() for j in stage), prices.min_billed_seconds)
    compute = fargate_usd(usage, prices)
    calls = providers_usd(api_calls, prices)
    return {
        "jobs": {stage: len(measured) for stage, measured in jobs.items()},
        "unmeasured_jobs": unmeasured,
        "vcpu_seconds": _seconds(usage.vcpu_seconds),
        "gb_seconds": _seconds(usage.gb_seconds),
        "billed_vcpu_seconds": _seconds(usage.billed_vcpu_seconds),
        "billed_gb_seconds": _seconds(usage.billed_gb_seconds),
        "fargate_usd": _usd(compute),
        "providers_usd": {p: _usd(v) for p, v in calls.items()},
        "estimated_usd": _usd(compute + sum(calls.values(), Decimal(0))),
        "prices": {
            "fargate_vcpu_hour_usd": str(prices.vcpu_hour_usd),
            "fargate_gb_hour_usd": str(prices.gb_hour_usd),
            "fargate_min_billed_seconds": prices.min_billed_seconds,
            "usd_per_call": {p: str(v) for p, v in sorted(prices.usd_per_call.items())},
        },
    }


def _usd(amount: Decimal) -> str:
    return str(amount.quantize(USD_PLACES, rounding=ROUND_HALF_UP))


def _seconds(amount: Decimal) -> str:
    return str(amount.quantize(SECONDS_PLACES, rounding=ROUND_HALF_UP))
