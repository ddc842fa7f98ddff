"""`worthy-batch finalize`: gather settings and clients, finalize the run, report."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from functools import partial

from common.adapters import aws
from common.adapters.db import connect, database_url
from common.adapters.heartbeat import emit_heartbeat
from common.adapters.jobclock import job_usage
from common.adapters.manifest_store import ManifestStore
from common.adapters.marketdata import alphavantage, exchangerate, finnhub
from common.adapters.store.runs import RunRepository
from common.domain.statuses import RunStatus
from common.platform.config import Settings, load_settings
from common.platform.logging import emit_metrics, get_logger, log_context
from finalizer.cost import Prices
from finalizer.service import Costing, finalize_run
from finalizer.summary import reason_lines

log = get_logger(__name__)


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


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    with log_context(run_id=args.run_id):
        conn = connect(
            database_url(settings),
            attempts=settings.db_connect_attempts,
            application_name="worthy-finalizer",
        )
        try:
            done = finalize_run(
                RunRepository(conn),
                ManifestStore(aws.s3_client()),
                args.run_id,
                costing=costing(settings),
            )
        finally:
            conn.close()
    outcomes = done.report["outcomes"]
    if not done.canary:
        run_date = date.fromisoformat(done.report["run_date"])
        emit_heartbeat(done.report["market"], run_date, datetime.now(UTC))
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
