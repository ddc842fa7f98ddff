"""`worthy-batch verify`: the ledger's invariants (common/adapters/store/verify.py); exit 0 when all
hold, 1 listing each violation."""

from __future__ import annotations

import argparse
import sys

from common.adapters.store.runs import RunRepository
from common.adapters.store.verify import CHECKS, violations
from common.domain.errors import LedgerViolation
from ops.root import OpsRoot

MAX_LISTED = 50


def run(args: argparse.Namespace, root: OpsRoot) -> int:
    conn = root.connect()
    try:
        if args.run_id:
            RunRepository(conn).require(args.run_id)  # an unknown run is never "OK"
        found = violations(conn, args.run_id)
    finally:
        conn.close()
    scope = f"run {args.run_id}" if args.run_id else "the whole ledger"
    if found:
        for line in found[:MAX_LISTED]:
            sys.stdout.write(f"VIOLATION {line}\n")
        if len(found) > MAX_LISTED:
            sys.stdout.write(f"... and {len(found) - MAX_LISTED} more\n")
        raise LedgerViolation(found)
    sys.stdout.write(f"ledger OK: {scope} satisfies every invariant ({len(CHECKS)} checks)\n")
    return 0
