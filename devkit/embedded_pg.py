"""An embedded PostgreSQL for local runs and tests (pgserver), kept under `.local/`.

Used only when `DATABASE_URL` is unset and we are not inside AWS Batch. The
server keeps running after the process exits, so the next command (or test
session) reuses it in a fraction of a second; `python -m devkit.embedded_pg
stop` stops it.

    python -m devkit.embedded_pg uri     # start if needed, print the DSN
    python -m devkit.embedded_pg stop
"""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import psycopg2.extensions

from common.domain.errors import ConfigError

LOCAL_DIR_VARIABLE = "WORTHY_LOCAL_DIR"


def local_dir() -> Path:
    """Where local state lives: `$WORTHY_LOCAL_DIR`, else `./.local`."""
    return Path(os.environ.get(LOCAL_DIR_VARIABLE) or ".local").resolve()


def shown(path: Path) -> str:
    """`path` as a reader wants it: relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _pgserver() -> Any:
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI).
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        raise ConfigError(
            {
                "DATABASE_URL": "missing, and no embedded PostgreSQL in this install "
                "(pgserver comes with the dev extra: make install)"
            }
        ) from None
    return pgserver


def data_dir() -> Path:
    return local_dir() / "pgdata"


def ensure_running() -> str:
    """Start the embedded server if needed; return its DSN."""
    pgserver = _pgserver()
    path = data_dir()
    path.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(path, cleanup_mode=None)
    # A Unix socket: libpq never negotiates TLS on one, and saying so keeps the
    # DSN honest if DATABASE_SSLMODE asks for more (docs/database.md "Database TLS").
    uri: str = psycopg2.extensions.make_dsn(server.get_uri(), sslmode="disable")
    return uri


def bundled_psql() -> Path | None:
    """The psql that comes with the embedded server (its own version), if this install has it."""
    try:
        path = Path(_pgserver().__file__).parent / "pginstall" / "bin" / "psql"
    except ConfigError:
        return None
    return path if path.exists() else None


def stop(timeout: float = 30.0) -> bool:
    """Stop the embedded server if one runs under `.local/`; True when one was stopped."""
    pid_file = data_dir() / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGINT)  # "fast" shutdown, as `pg_ctl -m fast stop`
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "uri"
    if action == "uri":
        print(ensure_running())
    elif action == "stop":
        stop()
    else:
        print(f"usage: python -m devkit.embedded_pg [uri|stop] (got {action!r})", file=sys.stderr)
        return 78
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
