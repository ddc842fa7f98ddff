"""The reasons in a report.json, as lines for people: what the finalizer logs and what
`local-run` prints under its report (pure; reads old reports too)."""

from __future__ import annotations

from typing import Any

SHOW_PLANS = 20  # plans listed by name; report.json lists up to MAX_LISTED_FAILURES


def reason_lines(report: dict[str, Any], limit: int = SHOW_PLANS) -> list[str]:
    """Invalid rows by reason, each plan not bought with its symbol, reason and provider
    detail (the first `limit`, failed before skipped), and why each chunk that did not
    succeed last failed."""
    lines: list[str] = []
    if report.get("catch_up"):
        lines.append(
            f"catch-up run: {report['run_date']} was already past when it was planned; "
            "bought at the prices of the day it ran"
        )
    invalid = report.get("invalid_rows") or {}
    if invalid.get("count"):
        lines.append(
            f"invalid rows, skipped (stay due until the app fixes them): {invalid['count']}"
        )
        lines.extend(f"  {n} x {reason}" for reason, n in invalid.get("reasons", {}).items())
    failures = report.get("failures") or []
    total = report.get("failures_total", len(failures))
    if failures:
        lines.append(f"not bought: {total} plan(s)")
        # Failed plans first: they are still due, and someone may need to act.
        for f in sorted(failures, key=lambda f: f["status"] != "failed")[:limit]:
            detail = f" - {f['detail']}" if f.get("detail") else ""
            symbol = f.get("symbol") or "?"
            lines.append(f"  plan {f['plan_id']} {symbol}: {f['status']} {f['reason']}{detail}")
        if total > limit:
            lines.append(f'  ... and {total - limit} more in report.json ("failures")')
    for chunk in report.get("chunk_errors") or []:
        if chunk.get("reason"):
            tries = f"{chunk['attempts']} attempt{'s' if chunk['attempts'] != 1 else ''}"
            lines.append(
                f"chunk {chunk['chunk']} {chunk['status']} after {tries}: {chunk['reason']}"
            )
    return lines
