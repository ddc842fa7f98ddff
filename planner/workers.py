"""How many worker processes the planner can afford: from the container, not the host.

A Fargate task of 0.25 vCPU and 512 MiB still shows the host's cores to
`os.cpu_count()`; its real limits are in its cgroup. Read both versions:

    cgroup v2   <root>/cpu.max ("QUOTA PERIOD" or "max PERIOD"), <root>/memory.max
    cgroup v1   <root>/cpu/cpu.cfs_quota_us and cpu.cfs_period_us (-1: no quota),
                <root>/memory/memory.limit_in_bytes

Each worker is a spawned interpreter that validates and compresses chunks
(~100 MB resident at most); the planner itself needs room for the snapshot's
sort buffers and chunks in flight. Workers = whole CPUs, capped by the memory
left after the planner's own share, and at least one (one means no pool).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PLANNER_MEMORY_MIB = 320  # the planner's peak at a million plans was ~250 MB (BENCHMARKS.md)
WORKER_MEMORY_MIB = 160  # a spawned worker validating and gzipping one chunk at a time
UNLIMITED = 1 << 62  # cgroup v1 writes a huge number for "no limit"


@dataclass(frozen=True)
class Limits:
    cpus: float  # CPUs this process may use (quota / period, or what the host offers)
    memory_mib: int | None  # None: no memory limit


def container_limits(root: Path = CGROUP_ROOT) -> Limits:
    """The CPU and memory limits of this process's container (cgroup v2, then v1)."""
    host = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0)
    host = host or float(os.cpu_count() or 1)
    quota = _cpu_quota(root)
    cpus = min(host, quota) if quota is not None else host
    return Limits(cpus=cpus, memory_mib=_memory_mib(root))


def planner_workers(limits: Limits) -> int:
    by_cpu = max(1, math.floor(limits.cpus))
    if limits.memory_mib is None:
        return by_cpu
    by_memory = (limits.memory_mib - PLANNER_MEMORY_MIB) // WORKER_MEMORY_MIB
    return max(1, min(by_cpu, by_memory))


def _cpu_quota(root: Path) -> float | None:
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        if quota == "max" or not period:
            return None
        return int(quota) / int(period)
    quota_v1 = _read(root / "cpu" / "cpu.cfs_quota_us") or _read(
        root / "cpu,cpuacct" / "cpu.cfs_quota_us"
    )
    period_v1 = _read(root / "cpu" / "cpu.cfs_period_us") or _read(
        root / "cpu,cpuacct" / "cpu.cfs_period_us"
    )
    if quota_v1 is None or period_v1 is None or int(quota_v1) <= 0:
        return None
    return int(quota_v1) / int(period_v1)


def _memory_mib(root: Path) -> int | None:
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        text = _read(path)
        if text is None:
            continue
        if text == "max" or int(text) >= UNLIMITED:
            return None
        return int(text) // (1024 * 1024)
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, ValueError):
        return None
