"""The --run-date of `worthy-batch submit` (and `submit --canary`), checked on this side."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from common.domain.calendar import resolve_run_day


def check_requested_date(args: argparse.Namespace, now: datetime) -> None:
    """--run-date, refused (78) before anything is submitted when the planner would refuse
    it: after the market's today without --allow-future-date, or outside its calendar data."""
    if args.run_date is None:
        return
    day = resolve_run_day(args.market, args.run_date, now, allow_future=args.allow_future_date)
    if day.catch_up:
        sys.stdout.write(
            f"catch-up run for {args.run_date} (today is {day.today} in {args.market})\n"
        )
