"""Logs and metrics.

JSON lines on stdout when stdout is not a terminal (what CloudWatch Logs
receives from Batch), short readable lines on a terminal. `run_id`,
`chunk_index` and `plan_id` travel as fields: bind them with `log_context`
or pass them as `extra=`. Every line passes through `redact`.

`emit_metrics` writes CloudWatch Embedded Metric Format lines, which
CloudWatch turns into metrics without any API call from us.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any, Literal, ParamSpec, TypeVar

from common.platform.redact import redact

P = ParamSpec("P")
R = TypeVar("R")

LOGGER_NAME = "worthy"
METRICS_NAMESPACE = "WorthyBatch"
CONTEXT_FIELDS = ("run_id", "chunk_index", "plan_id", "market", "run_date")

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "worthy_log_context", default=MappingProxyType({})
)
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def get_logger(name: str) -> logging.Logger:
    """A child of the `worthy` logger, e.g. `get_logger(__name__)`."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach fields (run_id=..., chunk_index=...) to every line logged inside."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def carry_context(function: Callable[P, R]) -> Callable[P, R]:
    """`function`, run with the caller's log fields even on a pool thread."""
    captured = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(function, *args, **kwargs)

    return run


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(_context.get())
    fields.update(
        (k, v)
        for k, v in vars(record).items()
        if k not in _STANDARD_ATTRS and not k.startswith("_")
    )
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, separators=(",", ":")))


class TextFormatter(logging.Formatter):
    """`13:45:01 info  message  run_id=... chunk_index=...` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{stamp} {record.levelname.lower():<7} {record.getMessage()}"
        if extras:
            line = f"{line}  {extras}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return redact(line)


def setup_logging(
    fmt: Literal["auto", "json", "text"] = "auto",
    stream: IO[str] | None = None,
    level: int = logging.INFO,
) -> None:
    """Route the `worthy` loggers to `stream` (stdout) in the chosen format."""
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger(LOGGER_NAME)
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    _metrics_state["json"] = use_json
    _metrics_state["stream"] = stream


_metrics_state: dict[str, Any] = {"json": True, "stream": None}

# Unit per metric name; anything else is a plain count.
_UNITS = {"duration_ms": "Milliseconds", "start_delay_ms": "Milliseconds"}


def emit_metrics(metrics: Mapping[str, int | float], **dimensions: str) -> None:
    """Write one CloudWatch Embedded Metric Format line (or a readable line on a terminal).

    `metrics` maps a name (`purchased`, `skipped`, `failed`, `api_calls`,
    `duration_ms`) to its value; `dimensions` (e.g. market="XNYS",
    stage="executor") become CloudWatch dimensions.
    """
    stream: IO[str] = _metrics_state["stream"] or sys.stdout
    if not _metrics_state["json"]:
        body = " ".join(f"{k}={v}" for k, v in metrics.items())
        where = " ".join(f"{k}={v}" for k, v in dimensions.items())
        stream.write(redact(f"{time.strftime('%H:%M:%S')} metrics {body}  {where}\n"))
        stream.flush()
        return
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [sorted(dimensions)],
                    "Metrics": [
                        {"Name": name, "Unit": _UNITS.get(name, "Count")} for name in metrics
                    ],
                }
            ],
        },
        **{k: v for k, v in _context.get().items() if k in CONTEXT_FIELDS},
        **dimensions,
        **metrics,
    }
    stream.write(redact(json.dumps(document, default=str, separators=(",", ":"))) + "\n")
    stream.flush()
