"""ISO weeks as the digests name them ("2026-W47"), in UTC."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_week(label: str) -> date:
    """The Monday of an ISO week label like '2026-W47'."""
    match = _WEEK.match(label.strip())
    if not match:
        raise ValueError(f"week {label!r} is not an ISO week; write it like 2026-W47")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        return date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"week {label!r} does not exist: {year} has no ISO week {week}") from None


def week_label(day: date) -> str:
    """The ISO week label of any day, e.g. '2026-W47'."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def shift_week(label: str, weeks: int) -> str:
    """The label `weeks` weeks after (negative: before) `label`."""
    return week_label(parse_week(label) + timedelta(weeks=weeks))


def week_bounds(label: str) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) of the week, timezone-aware UTC."""
    monday = parse_week(label)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    return start, start + timedelta(weeks=1)


def last_complete_week(now: datetime | None = None) -> str:
    """The most recent week that has fully ended (the scheduled digest's week)."""
    now = now or datetime.now(UTC)
    return week_label((now - timedelta(weeks=1)).date())


def weeks_before(label: str, count: int) -> list[str]:
    """The `count` weeks just before `label`, oldest first."""
    return [shift_week(label, -k) for k in range(count, 0, -1)]
