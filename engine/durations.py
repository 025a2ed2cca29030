"""ISO 8601 durations (P30D, PT12H, P1Y2M) for due dates, measured on calendar terms."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


def parse_duration(text: str) -> dict[str, int]:
    """Split an ISO 8601 duration into its parts; raise ValueError naming the bad value."""
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {text!r} (expected e.g. P30D or PT12H)")
    return {key: int(value) for key, value in match.groupdict().items() if value}


def add_duration(start: datetime, text: str) -> datetime:
    parts = parse_duration(text)
    months = parts.get("years", 0) * 12 + parts.get("months", 0)
    result = start
    if months:
        month_index = start.month - 1 + months
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, _days_in_month(year, month))
        result = start.replace(year=year, month=month, day=day)
    return result + timedelta(
        weeks=parts.get("weeks", 0),
        days=parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )


def _days_in_month(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day
