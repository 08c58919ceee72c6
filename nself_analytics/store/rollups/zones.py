"""The periods of a read in its time zone ``tz`` (IANA), over rollups kept per UTC hour.

A read's rows are periods of its zone: hours, days, ISO weeks (Monday) or months of local time, a day from one
local midnight to the next (23 or 25 hours on a DST change day). A rollup row of one UTC hour belongs wholly to
one period unless a period starts strictly inside that hour. In a zone whose offset is a whole number of hours
that never happens (its DST changes fall on whole hours as well), so its periods are assembled from whole hours.
In a zone with a 30- or 45-minute offset (Asia/Kolkata, Australia/Adelaide, Asia/Kathmandu) the hour holding a
local midnight is split between two days (and every hour between two local hours): :func:`split_hours` lists
those hours of a range, and a read takes them from raw events, as it takes the hours the aggregator has not
folded yet (store/rollups/dirty.py). A range's edges are local midnights: an edge inside an hour splits it too.

:func:`period_sql` is the one expression of a period in SQL; :func:`period_key` is the same in Python (the plain
reference and the answers' empty periods).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["HOUR", "local_day", "period_key", "period_sql", "split_hours"]

HOUR = timedelta(hours=1)


def period_sql(column: str, unit: str = "%(interval)s", tz: str = "%(tz)s") -> str:
    """SQL of the period (of unit ``unit``, a parameter: hour, day, week or month) of the instant ``column`` in zone
    ``tz`` (a parameter), as a timestamp without zone: for day, week and month the local date and time the period
    starts; for hour the UTC time the local hour starts (a repeated hour of a DST change stays two periods)."""
    local = f"({column} AT TIME ZONE {tz})"
    return (f"CASE WHEN {unit} = 'hour' THEN ({column} - ({local} - date_trunc('hour', {local}))) AT TIME ZONE 'UTC'"
            f" ELSE date_trunc({unit}, {local}) END")


def period_key(instant: datetime, unit: str, zone_info: ZoneInfo) -> datetime:
    """What :func:`period_sql` gives for ``instant`` (aware), as a naive datetime."""
    local = instant.astimezone(zone_info)
    if unit == "hour":
        start = instant - timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
        return start.astimezone(UTC).replace(tzinfo=None)
    day = local.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1) if unit == "month" else day


def local_day(day: date, zone_info: ZoneInfo) -> datetime:
    """The instant ``day`` starts in ``zone_info`` (a day starting in a DST gap: the first instant after it)."""
    return datetime.combine(day, time.min, zone_info)


def _floor_hour(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def split_hours(start: datetime, end: datetime, tz: str, unit: str) -> list[datetime]:
    """The UTC hours meeting ``[start, end)`` that are not wholly inside one period of ``unit`` in ``tz`` and the
    range: the hours holding a period's start (not at the hour) or an edge of the range (not at the hour).
    Empty for UTC and every zone whose offset is a whole number of hours."""
    zone_info = ZoneInfo(tz)
    hours: set[datetime] = {_floor_hour(edge) for edge in (start, end) if edge != _floor_hour(edge)}
    if unit == "hour":
        hour = _floor_hour(start)
        while hour < end:
            if period_key(hour, unit, zone_info) != period_key(hour + HOUR - timedelta(microseconds=1), unit,
                                                               zone_info):
                hours.add(hour)
            hour += HOUR
    else:
        day = start.astimezone(zone_info).date()
        while (boundary := local_day(day, zone_info)) < end:
            starts_period = (unit == "day" or (unit == "week" and day.weekday() == 0)
                             or (unit == "month" and day.day == 1))
            if starts_period and boundary >= start and boundary != _floor_hour(boundary):
                hours.add(_floor_hour(boundary))
            day += timedelta(days=1)
    return sorted(h for h in hours if h < end)
