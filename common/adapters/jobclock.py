"""How long this job has run, and at what Fargate size: one job's part of a run's cost.

Fargate bills a task from its image pull to its end; the nearest the process can
measure is its own start, read from the kernel (/proc/self/stat's start time
against the boot clock) so that the interpreter's start and the imports count.
Where the kernel does not say (not Linux), the time this module was imported
stands in. The size is the job definition's, which the template passes as
JOB_VCPU and JOB_MEMORY_MIB; without them, the template's default for the stage.
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path

from common.domain.models import JobUsage
from common.platform.config import (
    TEMPLATE_JOB_MEMORY_MIB,
    TEMPLATE_JOB_VCPU,
    TEMPLATE_PLANNER_MEMORY_MIB,
    TEMPLATE_PLANNER_VCPU,
    Settings,
)

_IMPORTED = time.monotonic()
_MAX_PLAUSIBLE_SECONDS = 7 * 24 * 3600  # a job older than this means the clocks disagree
_MILLISECOND = Decimal("0.001")


def process_seconds(stat: Path = Path("/proc/self/stat")) -> Decimal:
    """Wall seconds since this process started, to the millisecond."""
    started = _seconds_since_start(stat)
    if started is None:
        started = time.monotonic() - _IMPORTED
    return Decimal(f"{started:.3f}").quantize(_MILLISECOND)


def _seconds_since_start(stat: Path) -> float | None:
    try:
        fields = stat.read_text().rpartition(")")[2].split()
        ticks = int(fields[19])  # field 22, starttime: clock ticks after boot
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
        elapsed = now - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return elapsed if 0 <= elapsed < _MAX_PLAUSIBLE_SECONDS else None


def job_usage(settings: Settings, *, planner: bool = False) -> JobUsage:
    """This job's usage so far: its process's age and its size (JOB_VCPU, JOB_MEMORY_MIB,
    else the template's default for the planner, or for executors and finalizers)."""
    default_vcpu, default_mib = (
        (TEMPLATE_PLANNER_VCPU, TEMPLATE_PLANNER_MEMORY_MIB)
        if planner
        else (TEMPLATE_JOB_VCPU, TEMPLATE_JOB_MEMORY_MIB)
    )
    return JobUsage(
        seconds=process_seconds(),
        vcpu=settings.job_vcpu or default_vcpu,
        memory_mib=settings.job_memory_mib or default_mib,
    )
