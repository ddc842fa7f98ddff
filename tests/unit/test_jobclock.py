"""A job's usage (common/adapters/jobclock.py): its process's age and its size from the settings."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from common.adapters.jobclock import job_usage, process_seconds
from common.platform.config import Settings


def test_a_process_is_as_old_as_the_kernel_says(tmp_path: Path) -> None:
    real = process_seconds()
    assert Decimal(0) < real < Decimal(3600)  # this test process started a moment ago
    stat = Path(f"/proc/{os.getpid()}/stat")
    assert abs(process_seconds(stat) - process_seconds()) < Decimal("0.5")


def test_without_the_kernel_s_word_the_import_time_stands_in(tmp_path: Path) -> None:
    missing = tmp_path / "stat"
    assert Decimal(0) <= process_seconds(missing) < Decimal(3600)
    garbled = tmp_path / "garbled"
    garbled.write_text("12 (python) R")
    assert Decimal(0) <= process_seconds(garbled) < Decimal(3600)


def test_the_size_is_the_job_definition_s_else_the_template_default_of_the_stage() -> None:
    given = job_usage(Settings(job_vcpu=Decimal("1"), job_memory_mib=2048))
    assert (given.vcpu, given.memory_mib) == (Decimal("1"), 2048)
    child = job_usage(Settings())
    assert (child.vcpu, child.memory_mib) == (Decimal("0.25"), 512)
    planner = job_usage(Settings(), planner=True)
    assert (planner.vcpu, planner.memory_mib) == (Decimal("2"), 4096)
