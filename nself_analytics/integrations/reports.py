"""The bots' reports: figures of one site read from the HTTP API, formatted as plain text.

Each report is ``async (client, site, range) -> str``; :func:`run_report` turns the range argument and
every failure into a reply (a bad range, an unreachable service, a refused token), so a command
always answers. Both bots use this module, so Telegram and Discord say the same figures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .client import AnalyticsClient, Range, ServiceError, parse_range

__all__ = ["HELP", "REPORTS", "bar", "number", "percent", "run_report"]

TOP = 10
BAR_WIDTH = 12

Report = Callable[[AnalyticsClient, str, Range], Awaitable[str]]


def number(value: float | int | None) -> str:
    """1234567 -> 1,234,567; None -> 0."""
    if value is None:
        return "0"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0.0%"


def bar(value: float, peak: float, width: int = BAR_WIDTH) -> str:
    """A bar of block characters, ``value / peak`` of ``width`` long (at least one block when above zero)."""
    if peak <= 0 or value <= 0:
        return ""
    return "█" * max(1, round(width * value / peak))


async def stats(client: AnalyticsClient, site: str, span: Range) -> str:
    summary = await client.web("pageviews", site, span)
    lines = [f"📊 {site}: {span.label}",
             f"Page views: {number(summary['pageviews'])}",
             f"Visitors: {number(summary['visitors'])}",
             f"Sessions: {number(summary['sessions'])}"]
    if summary["sessions"]:
        lines.append(f"Views per session: {summary['pageviews'] / summary['sessions']:.2f}")
    return "\n".join(lines)


def _top(report: str, key: str, title: str, empty: str = "(none)") -> Report:
    async def run(client: AnalyticsClient, site: str, span: Range) -> str:
        rows: list[dict[str, Any]] = await client.web(report, site, span, limit=TOP)
        total = (await client.web("pageviews", site, span))["pageviews"]  # shares of all page views
        lines = [f"{title} of {site}: {span.label}"]
        if not rows:
            lines.append("No page views in this range.")
        for index, row in enumerate(rows, 1):
            lines.append(f"{index}. {row[key] or empty}: {number(row['pageviews'])} views "
                         f"({percent(row['pageviews'], total)}), {number(row['sessions'])} sessions")
        return "\n".join(lines)

    return run


async def trend(client: AnalyticsClient, site: str, span: Range) -> str:
    rows: list[dict[str, Any]] = await client.web("timeseries", site, span)
    peak = max((r["pageviews"] for r in rows), default=0)
    lines = [f"📈 Page views per day of {site}: {span.label}"]
    for row in rows[-31:]:  # a chat message holds a month of lines comfortably
        lines.append(f"{row['date']} {number(row['pageviews']):>7} {bar(row['pageviews'], peak)}")
    if not rows:
        lines.append("No page views in this range.")
    return "\n".join(lines)


REPORTS: dict[str, Report] = {
    "stats": stats,
    "pages": _top("pages", "path", "📄 Top pages"),
    "referrers": _top("referrers", "referrer", "🔗 Top referrers", "(direct)"),
    "countries": _top("countries", "country", "🌍 Top countries", "(unknown)"),
    "devices": _top("devices", "device", "📱 Devices", "(unknown)"),
    "languages": _top("languages", "language", "🗣 Languages", "(unknown)"),
    "trend": trend,
}

HELP = ("Web analytics of {site}. Commands (an optional range: 24h, 7d, 30d, 4w, 3m, today; default 7d):\n"
        "{prefix}stats, {prefix}pages, {prefix}referrers, {prefix}countries, {prefix}devices, {prefix}trend, "
        "{prefix}languages. Example: {prefix}stats 30d")


async def run_report(client: AnalyticsClient, name: str, site: str, args: list[str]) -> str:
    """The reply to a command: the report, or a clear message of what went wrong."""
    if len(args) > 1:
        return f"Too many arguments: give at most a range, e.g. {name} 30d"
    try:
        span = parse_range(args[0] if args else None)
    except ValueError as exc:
        return str(exc)
    try:
        return await REPORTS[name](client, site, span)
    except ServiceError as exc:
        return f"⚠️ {exc}"
