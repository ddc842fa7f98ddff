"""`worthy-batch migrate`."""

from __future__ import annotations

import argparse

from common.adapters.db import connect, database_url
from common.adapters.store.migrate import bundled_migrations, migrate
from common.platform.config import load_settings
from common.platform.logging import get_logger

log = get_logger(__name__)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    conn = connect(database_url(settings), attempts=settings.db_connect_attempts)
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
