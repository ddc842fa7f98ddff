"""What `make local-run` keeps under `.local/`, for the person at the terminal.

    python -m devkit.local_state ops COMMAND [ARGS]   `worthy-batch COMMAND` against it
                                                      (make local-ops ARGS="status")
    python -m devkit.local_state psql [ARGS]          psql on the local database (make psql)
    python -m devkit.local_state reset                start the demo over (make reset-local)

`ops` gives the command what `local-run` gave its stages: the embedded database,
the S3 objects kept in `.local/s3/` served by moto on loopback (or the server of
a `local-run` still going), and the stub market server (unless real API keys are
set); it stops them when the command ends.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from contextlib import ExitStack
from datetime import UTC, date, datetime

from common.domain.calendar import DEFAULT_MARKET, calendar_for
from common.domain.errors import ExitCode, WorthyError
from devkit.embedded_pg import bundled_psql, ensure_running, local_dir, shown
from devkit.embedded_pg import stop as stop_database
from devkit.local_run import (
    REAL_KEYS,
    exit_status,
    interrupted_by_sigterm,
    latest_market_day,
    s3_dir,
    stage_environment,
    start_stub,
    stop_group,
    stop_orphans,
)
from devkit.local_s3 import LocalS3, in_use
from devkit.local_submitter import python_command

RUN_ID = re.compile(r"([A-Z0-9]{4})-(\d{8})")
USAGE = "usage: python -m devkit.local_state ops COMMAND [ARGS] | psql [ARGS] | reset"


def market_day_of(args: list[str]) -> tuple[str, date]:
    """The market and day a command is about (its --run-id, else --run-date), for the stub's
    prices; else the latest market day."""
    market = DEFAULT_MARKET
    for i, arg in enumerate(args):
        name, _, value = arg.partition("=")
        if not value and i + 1 < len(args):
            value = args[i + 1]
        if name == "--market":
            market = value.upper()
        if name == "--run-id" and (found := RUN_ID.fullmatch(value.upper())):
            return found[1], datetime.strptime(found[2], "%Y%m%d").date()
        if name == "--run-date":
            try:
                return market, date.fromisoformat(value)
            except ValueError:
                pass  # the command itself says what is wrong with it
    return market, latest_market_day(market, calendar_for(market).today(datetime.now(UTC)))


def ops(args: list[str]) -> int:
    if not args:
        sys.stderr.write(f"{USAGE} (no command given)\n")
        return ExitCode.CONFIG
    import subprocess

    market, day = market_day_of(args)
    with ExitStack() as stack:
        dsn = os.environ.get("DATABASE_URL") or ensure_running()
        s3 = stack.enter_context(LocalS3(s3_dir()))
        stop_orphans(s3)
        real = all(os.environ.get(k) for k in REAL_KEYS)
        stub = None if real else start_stub(stack, day, market)
        env = stage_environment(dsn, s3.endpoint, stub)
        child = subprocess.Popen(python_command(args), env=env, process_group=0)
        try:
            with interrupted_by_sigterm():
                return exit_status(child.wait())
        except KeyboardInterrupt:
            stop_group(child)
            sys.stderr.write(f"worthy-batch {args[0]}: interrupted\n")
            return 130


def psql(args: list[str]) -> int:
    dsn = os.environ.get("DATABASE_URL") or ensure_running()
    bundled = bundled_psql()
    client = str(bundled) if bundled else shutil.which("psql")
    if client is None:
        return repl(dsn)
    sys.stdout.flush()
    os.execv(client, [client, dsn, *args])


def repl(dsn: str) -> int:
    """A last resort without any psql: one statement per line, rows tab-separated."""
    from common.adapters.db import connect

    conn = connect(dsn)
    conn.autocommit = True
    print("no psql client found; SQL, one statement a line (Ctrl-D ends):")
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            with conn.cursor() as cur:
                cur.execute(line)
                for row in cur.fetchall() if cur.description else []:
                    print("\t".join("" if v is None else str(v) for v in row))
        except Exception as exc:  # noqa: BLE001 - a person typed it: say why, read the next
            print(f"error: {' '.join(str(exc).split())}")
    conn.close()
    return 0


def reset() -> int:
    where = local_dir()
    if in_use(s3_dir()):
        sys.stderr.write(
            f"reset-local: a local-run or local-ops is using {shown(where)} now; "
            "stop it (Ctrl-C), then run make reset-local again\n"
        )
        return ExitCode.TEMPFAIL
    stop_database()
    shutil.rmtree(where, ignore_errors=True)
    print(
        f"removed {shown(where)} (the local database, its S3 objects, the runs' logs and "
        "reports); make local-run seeds the demo again"
    )
    return 0


def main(argv: list[str]) -> int:
    action, rest = (argv[0], argv[1:]) if argv else ("", [])
    try:
        if action == "ops":
            return ops(rest)
        if action == "psql":
            return psql(rest)
        if action == "reset" and not rest:
            return reset()
    except WorthyError as exc:
        sys.stderr.write(f"local {action}: {exc}\n")
        return int(exc.exit_code)
    sys.stderr.write(f"{USAGE} (got {' '.join(argv) or 'nothing'})\n")
    return ExitCode.CONFIG


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
