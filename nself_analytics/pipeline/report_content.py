"""The content of a scheduled report for one period, read through the read API's store functions: the site's top
stats with their change against the previous period of the same length, the page views per day (the chart), the
top pages, sources and goals, and the product side (the top events, a saved funnel's conversion). The result is a
notification payload (pipeline/notify/message.py renders it for email and chat)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import aiopg

from ..model.alert_spec import zone
from ..model.report_spec import ReportBody
from ..store import campaigns, explorer, saved_funnels, web_reads
from ..store.funnels import run_funnel
from ..store.web import WebQuery
from .alert_series import previous_period

__all__ = ["TOP", "build_report", "change"]

TOP = 5
PREVIOUS = {"daily": "previous day", "weekly": "previous week", "monthly": "previous month"}


def change(current: float, previous: float) -> str:
    """The change against the previous period, as a reader wants it: +12.5%, -3%, 0%, new."""
    if previous == 0:
        return "new" if current else "0%"
    pct = (current - previous) / previous * 100
    return f"{pct:+.1f}%".replace(".0%", "%")


def _num(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


async def _stats(conn: aiopg.Connection, query: WebQuery) -> dict[str, float]:
    summary = await web_reads.summary(conn, query)
    durations = await web_reads.session_duration(conn, query)
    bounce = round(durations.bounces / durations.sessions * 100, 1) if durations.sessions else 0.0
    return {"Visitors": summary.visitors, "Page views": summary.pageviews, "Sessions": summary.sessions,
            "Bounce rate %": bounce}


async def _web(conn: aiopg.Connection, account: str, body: ReportBody, start: datetime, end: datetime,
               before: datetime) -> tuple[list[list[str]], list[dict[str, Any]], list[float | None]]:
    site = body.site or ""
    query = WebQuery(site=site, start=start, end=end, account=account, limit=TOP)
    now, then = await _stats(conn, query), await _stats(conn, WebQuery(site=site, start=before, end=start,
                                                                       account=account))
    facts = [[name, f"{_num(value)} ({change(value, then[name])} vs {_num(then[name])})"]
             for name, value in now.items()]
    sections = []
    for title, name in (("Top pages", "pages"), ("Top sources", "referrers")):
        rows = await web_reads.breakdown(conn, query, name)
        sections.append({"title": title, "rows": [[str(r.key or "(direct)"), _num(r.pageviews)] for r in rows]})
    goals = []
    for goal in body.goals:
        kind, _, value = goal.partition(":")
        conversions, converted = await campaigns.goal(conn, query, kind, value)
        goals.append([goal, f"{_num(conversions)} conversions, {_num(converted)} visitors"])
    if goals:
        sections.append({"title": "Goals", "rows": goals})
    chart: list[float | None] = [float(day.pageviews) for day in await web_reads.timeseries(conn, query)]
    return facts, sections, chart


async def _product(conn: aiopg.Connection, account: str, body: ReportBody, start: datetime,
                   end: datetime) -> list[dict[str, Any]]:
    events = await explorer.event_names(conn, account=account, start=start, end=end, limit=TOP)
    sections: list[dict[str, Any]] = [{"title": "Top events", "rows": [[e.name, _num(e.count)] for e in events]}]
    if body.funnel_id is not None:
        saved = await saved_funnels.get_funnel(conn, account, body.funnel_id)
        if saved is None:
            sections.append({"title": "Funnel", "rows": [[f"#{body.funnel_id}", "deleted"]]})
        else:
            result = await run_funnel(conn, account=account, steps=saved["steps"], start=start, end=end,
                                      window_seconds=float(saved["window_seconds"]))
            first, last = result.total.steps[0].users, result.total.steps[-1].users
            rate = f"{last / first * 100:.1f}%" if first else "-"
            sections.append({"title": f"Funnel: {saved['name']}", "rows": [
                ["Entered", _num(first)], ["Completed", _num(last)], ["Conversion", rate]]})
    return sections


async def build_report(conn: aiopg.Connection, account: str, body: ReportBody, start: datetime, end: datetime,
                       link: str) -> dict[str, Any]:
    """The payload of the report over ``[start, end)`` (UTC instants of the period's local bounds)."""
    tz = zone(body.timezone)
    before = previous_period(body.period, tz, start)[0]
    facts: list[list[str]] = []
    sections: list[dict[str, Any]] = []
    chart: list[float | None] = []
    if body.site:
        facts, sections, chart = await _web(conn, account, body, start, end, before)
    sections += await _product(conn, account, body, start, end)
    first, last = start.astimezone(tz).date(), (end.astimezone(tz) - timedelta(seconds=1)).date()
    span = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    return {"report_name": body.name, "period": body.period, "timezone": body.timezone,
            "period_start": start.isoformat(), "period_end": end.isoformat(), "site": body.site,
            "title": f"{body.period.capitalize()} report: {body.name}",
            "summary": f"{body.site or 'Product analytics'}, {span} ({body.timezone}), compared with the "
                       f"{PREVIOUS[body.period]}",
            "facts": facts, "sections": sections, "link": link,
            "chart": {"values": chart, "bounds": [], "label": "Page views per day"} if chart else {}}
