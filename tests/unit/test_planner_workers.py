"""Planner workers follow the container's cgroup limits, not the host's CPU count."""

from __future__ import annotations

from pathlib import Path

from planner.workers import Limits, container_limits, planner_workers


def _cgroup_v2(root: Path, cpu_max: str, memory_max: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(cpu_max + "\n")
    (root / "memory.max").write_text(memory_max + "\n")
    return root


def test_a_quarter_vcpu_512_mib_task_gets_one_worker(tmp_path: Path) -> None:
    # A Fargate task of 0.25 vCPU and 512 MiB, as the executor and finalizer run.
    limits = container_limits(_cgroup_v2(tmp_path, "25000 100000", str(512 * 1024 * 1024)))
    assert limits.cpus == 0.25 and limits.memory_mib == 512
    assert planner_workers(limits) == 1


def test_the_planner_s_own_size_gets_two_workers(tmp_path: Path) -> None:
    # The planner's job definition: 2 vCPUs and 4 GiB.
    limits = container_limits(_cgroup_v2(tmp_path, "200000 100000", str(4096 * 1024 * 1024)))
    assert planner_workers(limits) == min(2, planner_workers(Limits(cpus=2, memory_mib=None)))


def test_memory_caps_workers_below_the_cpus(tmp_path: Path) -> None:
    limits = container_limits(_cgroup_v2(tmp_path, "400000 100000", str(640 * 1024 * 1024)))
    assert limits.cpus <= 4
    assert planner_workers(limits) == 2  # (640 - 320) // 160


def test_cgroup_v1_limits_are_read_too(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(str(512 * 1024 * 1024))
    limits = container_limits(tmp_path)
    assert (limits.cpus, limits.memory_mib) == (0.5, 512)
    assert planner_workers(limits) == 1


def test_no_quota_means_the_host_s_cpus(tmp_path: Path) -> None:
    unlimited = container_limits(_cgroup_v2(tmp_path, "max 100000", "max"))
    assert unlimited.memory_mib is None and unlimited.cpus >= 1
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert container_limits(v1).cpus == unlimited.cpus
    assert container_limits(tmp_path / "none").memory_mib is None  # no cgroup files at all
