"""Progress of long work: a bar redrawn in place on a terminal, log lines otherwise.

Off a terminal (Batch, CloudWatch, CI, log files) a `Progress` logs a line a
tenth of the way at a time, and with `every=SECONDS` also from a timer thread
at least that often while the work is under way, whether or not anything
finished: a child waiting on a provider's per-minute rate still says where it
is and how long the rest should take at its current pace. The standard library
only, so an executor child pays nothing to import it.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO

from common.platform.logging import carry_context, get_logger

log = get_logger(__name__)
BAR_WIDTH = 30
BAR_LINE = 160  # characters of a redrawn bar, at most
HEARTBEAT_SECONDS = 5.0  # an executor child's progress lines (docs/design.md section 8: every 10 s)
TTY_REDRAW_SECONDS = 1.0


def duration(seconds: float) -> str:
    """`42s`, `3m 05s`, `1h 02m`: short enough for a progress line."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


class Progress:
    """`done` of `total` units of work. Safe to advance from several threads."""

    def __init__(
        self,
        total: int,
        label: str,
        stream: IO[str] | None = None,
        *,
        unit: str = "",
        every: float | None = None,
    ) -> None:
        self.total = max(total, 0)
        self.done = 0
        self.label = label
        self.unit = unit
        self.note = ""
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._started = time.monotonic()
        self._last_tenth = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        if every is not None and self.total > 0:
            period = min(every, TTY_REDRAW_SECONDS) if self._tty else every
            # With the caller's log fields (run_id, chunk_index) on each line.
            self._timer = threading.Thread(
                target=carry_context(self._beat),
                args=(period,),
                name=f"progress-{label}",
                daemon=True,
            )
            self._timer.start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.close(finished=kind is None)

    def advance(self, count: int = 1, note: str = "") -> None:
        with self._lock:
            self.done = min(self.total, self.done + count)
            self.note = note or self.note
            if self._tty:
                self._draw_bar()
                return
            tenth = 10 * self.done // self.total if self.total else 10
            if tenth != self._last_tenth and self._timer is None:
                self._last_tenth = tenth
                self._log_line()

    def line(self) -> str:
        """`pricing: 12/161 symbols (7%), 0.9/s, about 2m 45s left`."""
        elapsed = time.monotonic() - self._started
        unit = f" {self.unit}" if self.unit else ""
        share = f" ({100 * self.done // self.total}%)" if self.total else ""
        text = f"{self.label}: {self.done}/{self.total}{unit}{share} in {duration(elapsed)}"
        if 0 < self.done < self.total and elapsed > 0:
            pace = self.done / elapsed
            text += f", {pace:.1f}/s, about {duration((self.total - self.done) / pace)} left"
        elif self.done < self.total:
            text += ", time left not known yet"
        return f"{text} {self.note}".rstrip()

    def close(self, finished: bool = True) -> None:
        """Stop the timer; log (or draw) the last state when a line was logged before."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        with self._lock:
            if self._tty:
                self._draw_bar()
                self._stream.write("\n")
                self._stream.flush()
            elif self._timer is not None and self._last_tenth >= 0 and finished:
                self._log_line()

    def _beat(self, period: float) -> None:
        while not self._stop.wait(period):
            with self._lock:
                if self._tty:
                    self._draw_bar()
                else:
                    self._last_tenth = 10 * self.done // self.total
                    self._log_line()

    def _log_line(self) -> None:
        log.info("%s", self.line())

    def _draw_bar(self) -> None:
        filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        if self.note:  # what the work says of itself (local-run: each child's last line)
            elapsed = duration(time.monotonic() - self._started)
            text = f"{self.done}/{self.total} in {elapsed} {self.note}"
        else:
            text = self.line().partition(": ")[2]
        self._stream.write(f"\r{self.label} [{bar}] {text}"[:BAR_LINE] + "\x1b[K")
        self._stream.flush()
