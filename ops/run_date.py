"""The --run-date of `worthy-batch submit` (and `submit --canary`), checked on this side."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from common.domain.calendar import RunDateRefused, calendar_for, check_run_date
from common.platform.errors import ConfigError


def check_requested_date(args: argparse.Namespace, now: datetime) -> None:
    """--run-date, refused (78) before anything is submitted when the planner would refuse
    it: after the market's today without --allow-future-date, or outside its calendar data."""
    if args.run_date is None:
        return
    today = calendar_for(args.market).today(now)
    try:
        catch_up = check_run_date(
            args.market, args.run_date, today, allow_future=args.allow_future_date
        )
    except RunDateRefused as exc:
        raise ConfigError({"--run-date": str(exc)}) from None
    if catch_up:
        sys.stdout.write(f"catch-up run for {args.run_date} (today is {today} in {args.market})\n")
