"""The day of `worthy-batch submit` (and `submit --canary`), checked on this side."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from common.domain.calendar import RunDay, resolve_run_day


def check_requested_date(args: argparse.Namespace, now: datetime) -> RunDay:
    """--market and --run-date (default: the market's today), refused (78) before anything
    is submitted when the planner would refuse them: a market whose plans run in another
    market's run (XNAS: use XNYS), a day after the market's today without
    --allow-future-date, or one outside its calendar data."""
    day = resolve_run_day(args.market, args.run_date, now, allow_future=args.allow_future_date)
    if day.catch_up:
        sys.stdout.write(
            f"catch-up run for {args.run_date} (today is {day.today} in {args.market})\n"
        )
    return day
