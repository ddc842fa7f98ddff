"""A progress bar for long local work: redrawn in place on a terminal, a log line per
tenth of the work otherwise (so CI logs and files stay readable)."""

from __future__ import annotations

import sys
import time
from typing import IO

from common.logging import get_logger

log = get_logger(__name__)
BAR_WIDTH = 30


class Progress:
    def __init__(self, total: int, label: str, stream: IO[str] | None = None) -> None:
        self.total = max(total, 0)
        self.done = 0
        self.label = label
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._started = time.monotonic()
        self._last_tenth = -1
        self.note = ""

    def advance(self, count: int = 1, note: str = "") -> None:
        self.done = min(self.total, self.done + count)
        self.note = note or self.note
        self._draw()

    def _draw(self) -> None:
        elapsed = time.monotonic() - self._started
        if self._tty:
            filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self._stream.write(
                f"\r{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s {self.note}"[:160]
            )
            self._stream.flush()
            return
        tenth = 10 * self.done // self.total if self.total else 10
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            log.info("%s: %d/%d (%.1fs) %s", self.label, self.done, self.total, elapsed, self.note)

    def close(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
