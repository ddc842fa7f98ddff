"""`worthy-batch finalize`: gather settings and clients, finalize the run, report."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime

from common import aws
from common.config import load_settings
from common.db import connect, database_url
from common.domain.statuses import RunStatus
from common.heartbeat import emit_heartbeat
from common.logging import emit_metrics, get_logger, log_context
from common.manifest_store import ManifestStore
from common.store.runs import RunRepository
from finalizer.service import finalize_run
from finalizer.summary import reason_lines

log = get_logger(__name__)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    with log_context(run_id=args.run_id):
        conn = connect(
            database_url(settings),
            attempts=settings.db_connect_attempts,
            application_name="worthy-finalizer",
        )
        try:
            done = finalize_run(RunRepository(conn), ManifestStore(aws.s3_client()), args.run_id)
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
    log.info(
        "run %s finalized: %s; report at %s",
        args.run_id,
        done.status,
        done.report_uri,
        extra={"status": done.status},
    )
    return 0
