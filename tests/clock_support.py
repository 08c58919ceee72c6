"""Test time, relative to now: no test depends on the calendar date it runs on, and no event it sends ages out of
the retention window (90 days)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def days_ago(days: float, hour: int = 10) -> datetime:
    """``hour`` o'clock UTC, ``days`` days before today: test timestamps are relative to now, so no test ages out of
    the retention window (90 days) or depends on the calendar date it runs on."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days) + timedelta(hours=hour)


def iso(ts: datetime) -> str:
    """``ts`` as the wire's ISO-8601 UTC text (``...Z``)."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
