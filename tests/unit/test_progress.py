"""Progress of long work: timed log lines off a terminal, a bar on one."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator

import pytest

from common.platform.progress import Progress, duration


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture
def lines() -> Iterator[list[str]]:
    got: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: got.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("worthy.common.platform.progress")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield got
    logger.removeHandler(handler)


def test_off_a_terminal_a_timer_logs_where_the_work_is_even_when_nothing_finishes(
    lines: list[str],
) -> None:
    with Progress(10, "pricing", Pipe(), unit="symbols", every=0.05) as bar:
        bar.advance(3)
        time.sleep(0.32)  # nothing finishes meanwhile: the timer still speaks
    assert len(lines) >= 4, lines  # every 0.05 s, and a last line
    assert lines[0].startswith("pricing: 3/10 symbols (30%) in 0s, ")
    assert "/s, about " in lines[0] and lines[0].endswith(" left")


def test_without_a_timer_it_logs_each_tenth_once(
    lines: list[str],
) -> None:
    bar = Progress(20, "jobs", Pipe())
    for _ in range(20):
        bar.advance()
    bar.close()
    assert len(lines) == 11 and lines[-1].startswith("jobs: 20/20 (100%) in ")


def test_a_quick_piece_of_work_logs_nothing(lines: list[str]) -> None:
    with Progress(5, "writing", Pipe(), unit="plans", every=10) as bar:
        bar.advance(5)
    assert lines == []


def test_on_a_terminal_it_redraws_one_bar(lines: list[str]) -> None:
    screen = Terminal()
    with Progress(4, "writing", screen, unit="plans", every=10) as bar:
        bar.advance(2)
    assert lines == []
    assert "\rwriting [###############...............] 2/4 plans (50%)" in screen.getvalue()
    assert screen.getvalue().endswith("\n")


def test_durations_read_short() -> None:
    assert [duration(s) for s in (4.4, 65, 3725)] == ["4s", "1m 05s", "1h 02m"]
