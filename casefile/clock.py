"""Time as the case database stores it (UTC, aware) and as staff read it (Europe/Oslo)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")  # staff's local time, for display only; deadlines use each case's own timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def local_time(stamp: datetime | None, fmt: str = "%d.%m.%Y %H:%M", empty: str = "–") -> str:
    """A stored time as staff read it, or `empty` when there is none."""
    if stamp is None:
        return empty
    return stamp.astimezone(OSLO).strftime(fmt)
