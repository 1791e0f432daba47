"""Which backups the keep rules keep, per DC, as borg's prune does: each
rule walks the backups newest first and keeps the newest of each period
(for --keep-last every backup is its own period) that no earlier rule
kept, until it has N; a rule that runs out of backups keeps the oldest
too.  Periods are UTC calendar days, ISO weeks and months of the backup
time in the manifest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

RULES: tuple[str, ...] = ("last", "daily", "weekly", "monthly")


def _when(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, tz=timezone.utc)


_PERIOD: dict[str, Callable[[Any], object]] = {
    "last": lambda b: id(b),
    "daily": lambda b: _when(b.created_unix).strftime("%Y-%m-%d"),
    "weekly": lambda b: _when(b.created_unix).isocalendar()[:2],
    "monthly": lambda b: _when(b.created_unix).strftime("%Y-%m"),
}


def kept_by_rules(backups: Sequence[Any], keep: dict[str, int]) -> dict[int, str]:
    """id(backup) -> the rule that keeps it ("daily #2", "weekly #1 (oldest)");
    backups have .created_unix (int) and .name."""
    newest_first = sorted(backups, key=lambda b: (b.created_unix, b.name), reverse=True)
    reasons: dict[int, str] = {}
    for rule in RULES:
        n = keep.get(rule, 0)
        if n <= 0 or not newest_first:
            continue
        taken, last = 0, None
        for b in newest_first:
            period = _PERIOD[rule](b)
            if period == last:
                continue
            last = period
            if id(b) not in reasons:
                taken += 1
                reasons[id(b)] = f"{rule} #{taken}"
                if taken == n:
                    break
        oldest = newest_first[-1]
        if taken < n and id(oldest) not in reasons:
            reasons[id(oldest)] = f"{rule} #{taken + 1} (oldest)"
    return reasons
