"""`worthy-batch finalize`: ask the composition root for settings and clients, finalize
the run, report."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from psycopg2.extensions import connection

from common.adapters.heartbeat import emit_heartbeat
from common.adapters.jobclock import job_usage
from common.adapters.manifest_store import ManifestStore
from common.adapters.marketdata import alphavantage, exchangerate, finnhub
from common.adapters.store.runs import RunRepository
from common.domain.calendar import today_at
from common.domain.run_key import RunKey
from common.domain.statuses import RunStatus
from common.platform.config import Settings
from common.platform.logging import emit_metrics, get_logger, log_context
from finalizer.cost import Prices
from finalizer.service import Costing, finalize_run
from finalizer.summary import reason_lines

log = get_logger(__name__)

APPLICATION_NAME = "worthy-finalizer"


class FinalizerRoot(Protocol):
    """What `finalize` asks the composition root (entry/bootstrap.py) for."""

    def settings(self, required: Iterable[str] = ()) -> Settings: ...

    def connect(self, application_name: str = ...) -> connection: ...

    def manifest_store(self) -> ManifestStore: ...


def costing(settings: Settings) -> Costing:
    """Prices from the settings (docs/sizing-and-cost.md "Cost per run"); report names providers as
    their API calls do."""
    prices = Prices(
        vcpu_hour_usd=settings.fargate_vcpu_hour_usd,
        gb_hour_usd=settings.fargate_gb_hour_usd,
        min_billed_seconds=settings.fargate_min_billed_seconds,
        usd_per_call={
            finnhub.NAME: settings.finnhub_usd_per_call,
            alphavantage.NAME: settings.alpha_vantage_usd_per_call,
            exchangerate.NAME: settings.exchange_rate_usd_per_call,
        },
    )
    return Costing(prices, partial(job_usage, settings))


def run(args: argparse.Namespace, root: FinalizerRoot) -> int:
    settings = root.settings()
    with log_context(run_id=args.run_id):
        conn = root.connect(APPLICATION_NAME)
        try:
            done = finalize_run(
                RunRepository(conn),
                root.manifest_store(),
                args.run_id,
                costing=costing(settings),
            )
        finally:
            conn.close()
    outcomes = done.report["outcomes"]
    if not done.canary:
        key = RunKey.parse(args.run_id)
        emit_heartbeat(key, today_at(key.market, datetime.now(UTC)))
    emit_metrics(
        {
            "purchased": outcomes.get("purchased", 0),
            "skipped": outcomes.get("skipped", 0),
            "failed": outcomes.get("failed", 0),
            "api_calls": sum(done.report["api_calls"].values()),
            # 1 when chunks failed or never ran (partial, failed): the stack alarms on it.
            "run_incomplete": int(done.status != RunStatus.SUCCEEDED),
        },
        market=done.report["market"],
        stage="finalizer",
    )
    for line in reason_lines(done.report):
        log.info("%s", line)
    cost = done.report.get("cost", {})
    log.info(
        "run %s finalized: %s; %s vCPU-s, %s GB-s, estimated $%s; report at %s",
        args.run_id,
        done.status,
        cost.get("vcpu_seconds"),
        cost.get("gb_seconds"),
        cost.get("estimated_usd"),
        done.report_uri,
        extra={"status": done.status},
    )
    return 0
