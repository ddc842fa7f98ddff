"""`worthy-batch migrate`."""

from __future__ import annotations

import argparse

from common.adapters.store.migrate import bundled_migrations, migrate
from common.platform.logging import get_logger
from ops.root import OpsRoot

log = get_logger(__name__)


def run(args: argparse.Namespace, root: OpsRoot) -> int:
    conn = root.connect()
    try:
        applied = migrate(conn)
    finally:
        conn.close()
    total = len(bundled_migrations())
    if applied:
        log.info("schema migrated: applied %s (%d of %d)", ", ".join(applied), len(applied), total)
    else:
        log.info("schema up to date: %d migration(s), nothing to apply", total)
    return 0
