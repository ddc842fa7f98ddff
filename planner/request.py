"""What `plan` was asked for, resolved: the run's day (common/domain/calendar.py
`resolve_run_day`), how to chunk it, and what the estimate needs."""

from __future__ import annotations

from dataclasses import dataclass

from common.domain.calendar import RunDay
from common.domain.chunking import ChunkPolicy
from planner.estimate import PricingLimits


@dataclass(frozen=True)
class PlanRequest:
    day: RunDay
    chunking: ChunkPolicy = ChunkPolicy()  # CHUNK_SIZE, else sized from the work
    workers: int = 1  # processes that validate and compress chunks on big runs
    pricing: PricingLimits | None = None  # to estimate the pricing time; None: no estimate
