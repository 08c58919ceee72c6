"""An alert's intervals in its time zone, and the value of its series over one, computed by the store functions
the read API uses (no second definition): /trends (``run_trends``), /metrics and /sessions (``event_counts``,
``session_totals``), the web reads (``summary``, ``session_duration``, ``goal``), /funnel (``run_funnel`` of a
saved funnel) and /api/realtime (``latest``).

An alert checks the last complete interval: at 10:07 an hourly alert checks 09:00-10:00 and a daily one
yesterday, midnight to midnight in its zone (a DST day has 23 or 25 hours); weeks start on Monday."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import aiopg

from ..model.alert_spec import Series
from ..store import campaigns, realtime, saved_funnels, web_reads
from ..store.funnels import run_funnel
from ..store.metrics import event_counts, session_totals
from ..store.trends import run_trends
from ..store.web import WebQuery

__all__ = ["DROP_WINDOW_SECONDS", "SPIKE_WINDOW_SECONDS", "SeriesError", "measure", "period", "previous_period"]

SPIKE_WINDOW_SECONDS = 300  # current visitors: the last 5 minutes, as /api/realtime
DROP_WINDOW_SECONDS = 12 * 3600
_FIXED = {"15m": timedelta(minutes=15), "hourly": timedelta(hours=1)}


class SeriesError(Exception):
    """The series cannot be computed any more (its saved funnel was deleted...): the check is errored."""


def _local_midnight(year: int, month: int, day: int, tz: ZoneInfo) -> datetime:
    return datetime(year, month, day, tzinfo=tz).astimezone(UTC)


def period(interval: str, tz: ZoneInfo, now: datetime) -> tuple[datetime, datetime]:
    """The last complete interval before ``now`` as UTC instants [start, end)."""
    local = now.astimezone(tz)
    if interval in _FIXED:
        step = 15 if interval == "15m" else 60
        end = local.replace(minute=local.minute // step * step, second=0, microsecond=0).astimezone(UTC)
        return end - _FIXED[interval], end
    today = local.date()
    if interval == "daily":
        first, last = today - timedelta(days=1), today
    elif interval == "weekly":
        last = today - timedelta(days=today.weekday())
        first = last - timedelta(days=7)
    else:
        last = today.replace(day=1)
        first = (last - timedelta(days=1)).replace(day=1)
    return (_local_midnight(first.year, first.month, first.day, tz),
            _local_midnight(last.year, last.month, last.day, tz))


def previous_period(interval: str, tz: ZoneInfo, start: datetime) -> tuple[datetime, datetime]:
    """The interval right before the one starting at ``start``."""
    return period(interval, tz, start)


def _whole_hours(*instants: datetime) -> bool:
    return all(t.minute == 0 and t.second == 0 and t.microsecond == 0 for t in instants)


async def _trend(conn: aiopg.Connection, account: str, series: Series, start: datetime, end: datetime) -> float | None:
    kind, _, prop = series.measure.partition(":")
    assert series.event is not None
    # count without a breakdown reads the hour aggregates, which answer whole UTC hours only
    fast = kind == "count" and series.breakdown is None and _whole_hours(start, end)
    result = await run_trends(conn, account=account, events=[series.event], start=start, end=end,
                              previous_start=start, interval="day", prop=prop or None, breakdown=series.breakdown,
                              measure="count" if fast else None)
    row = result.current.get((series.event, series.breakdown_value if series.breakdown else None, False))
    if row is None or not row.total:
        return None if kind == "avg" else 0.0
    value = row.total.get(kind)
    return None if value is None else float(value)


async def _metric(conn: aiopg.Connection, account: str, series: Series, start: datetime,
                  end: datetime) -> float | None:
    if series.metric == "event_count":
        counts = await event_counts(conn, account=account, start=start, end=end, group_by="day",
                                    user_id=series.user_id)
        return float(sum(per.get(series.event or "", 0) for per in counts.values()))
    totals = await session_totals(conn, account=account, start=start, end=end, group_by="day",
                                  start_event=series.start_event or "play", stop_event=series.stop_event or "stop",
                                  user_id=series.user_id)
    count = sum(c for c, _ in totals.values())
    if series.metric == "sessions":
        return float(count)
    return sum(t for _, t in totals.values()) / count if count else None


async def _web(conn: aiopg.Connection, account: str, series: Series, start: datetime, end: datetime) -> float | None:
    query = WebQuery(site=series.site or "", start=start, end=end, account=account)
    if series.stat in ("visitors", "pageviews", "sessions"):
        return float(getattr(await web_reads.summary(conn, query), series.stat))
    if series.stat == "bounce_rate":
        durations = await web_reads.session_duration(conn, query)
        return round(durations.bounces / durations.sessions, 4) if durations.sessions else 0.0
    kind, _, value = (series.goal or "").partition(":")
    conversions, _visitors = await campaigns.goal(conn, query, kind, value)
    return float(conversions)


async def _funnel(conn: aiopg.Connection, account: str, series: Series, start: datetime,
                  end: datetime) -> float | None:
    saved = await saved_funnels.get_funnel(conn, account, series.funnel_id or 0)
    if saved is None:
        raise SeriesError(f"saved funnel {series.funnel_id} does not exist")
    result = await run_funnel(conn, account=account, steps=saved["steps"], start=start, end=end,
                              window_seconds=float(saved["window_seconds"]))
    first, last = result.total.steps[0].users, result.total.steps[-1].users
    return round(last / first, 6) if first else None


async def measure(conn: aiopg.Connection, account: str, series: Series, start: datetime, end: datetime,
                  now: datetime) -> float | None:
    """The series' value over [start, end) (None: undefined, e.g. a conversion with no one entering). The traffic
    kinds look at ``now``: current visitors, or visitors over the last 12 hours."""
    if series.kind == "traffic_spike":
        data = await realtime.latest(conn, account=account, site=series.site or "",
                                     since=now - timedelta(seconds=SPIKE_WINDOW_SECONDS),
                                     until=now + timedelta(seconds=60), include_bots=False, limit=1)
        return float(data.visitors)
    if series.kind == "traffic_drop":
        query = WebQuery(site=series.site or "", start=now - timedelta(seconds=DROP_WINDOW_SECONDS), end=now,
                         account=account)
        return float((await web_reads.summary(conn, query)).visitors)
    compute = {"trend": _trend, "metric": _metric, "web": _web, "funnel": _funnel}[series.kind]
    return await compute(conn, account, series, start, end)
