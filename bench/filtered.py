"""Filtered vs unfiltered web reads at 1,000,000 events on an embedded PostgreSQL (issue 24 item 2).

    .venv/bin/python -m bench.filtered [--events 1000000] [--runs 5] [--days 30] [--heat-map]

Generates the events with bench.generate and bench.dataset (90 days; page views with sites, paths and the
referrer of a visit's first page), gives each session's page views a device and a country, COPYs them into a
PostgreSQL of its own under --data-dir (kept between runs), runs the service's aggregator over every hour, then
times every web read through the store functions the HTTP handlers call (store/web_reads.py), over the last
--days days, unfiltered and under one or two filters: the median of --runs runs after one warm-up. Prints a
markdown table: milliseconds per read and filter, and the worst filtered/unfiltered ratio per read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiopg
import msgspec
import psycopg2

from nself_analytics.host.embedded import EmbeddedPostgres
from nself_analytics.host.migrate import apply_migrations
from nself_analytics.store import web_reads
from nself_analytics.store.rollups.aggregates import materialize
from nself_analytics.store.web import WebQuery
from nself_analytics.store.web_sql import PEAK_WEEK

from .dataset import WEB_COLUMNS, with_web_fields
from .generate import generate_events, load_events

Read = Callable[[aiopg.Connection, WebQuery], Awaitable[Any]]


def _breakdown(name: str) -> Read:
    return lambda conn, query: web_reads.breakdown(conn, query, name)


READS: dict[str, Read] = {
    "pageviews": web_reads.summary, "pages": _breakdown("pages"), "referrers": _breakdown("referrers"),
    "timeseries": web_reads.timeseries, "devices": _breakdown("devices"), "countries": _breakdown("countries"),
    "entry-pages": web_reads.entry_pages, "exit-pages": web_reads.exit_pages,
    "peak-hours": web_reads.peak_hours, "peak-hours/week": web_reads.peak_week,
    "screen-widths": web_reads.screen_widths,
    "session-duration": web_reads.session_duration, "utm-sources": _breakdown("utm-sources"),
}
FILTERS: dict[str, dict[str, Any]] = {
    "none": {},
    "path": {"path": "/pricing"},
    "referrer": {"session": (("referrer", "google.com"),)},
    "device": {"session": (("device", "mobile"),)},
    "entry": {"entry_page": "/"},
    "referrer+device": {"session": (("referrer", "google.com"), ("device", "mobile"))},
    "path+country": {"path": "/pricing", "session": (("country", "DE"),)},
    "event": {"events": ("signup",)},
    "event+device": {"events": ("signup",), "session": (("device", "mobile"),)},
}
# each session's device and country, from its id: a session keeps them throughout
FACTS = """
UPDATE np_analytics_events
SET device = (ARRAY['desktop', 'mobile', 'tablet'])[1 + abs(hashtext(session_id)) % 3],
    country = (ARRAY['US', 'DE', 'FR', 'GB', 'JP'])[1 + abs(hashtext(session_id || 'c')) % 5]
WHERE event = '$pageview' AND session_id IS NOT NULL;
-- the signups of sessions carry the site (sent from its pages), so the event filter has sessions to select
UPDATE np_analytics_events SET site = 'example.com' WHERE event = 'signup' AND session_id IS NOT NULL
"""


def _count(url: str) -> int:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(*) FILTER (WHERE event = '$pageview') FROM np_analytics_events")
            total, views = cur.fetchone()
            print(f"{total:,} events, {views:,} page views", flush=True)
            return int(total)
    finally:
        conn.close()


def _sql(url: str, sql: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


async def materialize_all(url: str) -> int:
    async with aiopg.connect(url, timeout=3600) as conn:
        total = 0
        while claimed := await materialize(conn, 36500):
            total += claimed
        return total


async def time_reads(url: str, base: WebQuery, runs: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    async with aiopg.connect(url, timeout=600) as conn:
        for name, read in READS.items():
            out[name] = {}
            for label, fields in FILTERS.items():
                query = msgspec.structs.replace(base, **fields)
                await read(conn, query)  # warm-up
                samples = []
                for _ in range(runs):
                    started = time.perf_counter()
                    await read(conn, query)
                    samples.append((time.perf_counter() - started) * 1000)
                out[name][label] = statistics.median(samples)
            print(f"  {name:<18} " + " ".join(f"{label}={ms:.0f}" for label, ms in out[name].items()), flush=True)
    return out


def table(results: dict[str, dict[str, float]]) -> str:
    labels = list(FILTERS)
    lines = ["| read | " + " | ".join(labels) + " | worst ratio |", "|---" * (len(labels) + 2) + "|"]
    for name, row in results.items():
        worst = max(row[label] / row["none"] for label in labels[1:])
        lines.append(f"| {name} | " + " | ".join(f"{row[label]:.0f}" for label in labels) + f" | {worst:.1f}x |")
    return "\n".join(lines)


async def sessions_path(conn: aiopg.Connection, query: WebQuery) -> list[Any]:
    """The unfiltered heat map as 1.2.0 read it before migration 0124: the session path (the filtered read's SQL)."""
    return await web_reads._rows(conn, PEAK_WEEK, query, days=query.tz == "UTC", extra={"filtered": True})


async def heat_map(url: str, now: datetime, runs: int) -> None:
    """--heat-map: the unfiltered peak-hours/week from the per-hour rows (as the handler reads it) against the
    session path, interleaved per run, over 30 and 90 days in UTC and Asia/Kolkata; both must agree on page views."""
    async with aiopg.connect(url, timeout=600) as conn:
        for days in (30, 90):
            for tz in ("UTC", "Asia/Kolkata"):
                query = WebQuery(site="example.com", start=now - timedelta(days=days), end=now + timedelta(minutes=30),
                                 tz=tz)
                new, old = await web_reads.peak_week(conn, query), await sessions_path(conn, query)  # warm-up
                assert [c.pageviews for c in new] == [int(r[3]) for r in old], "page views differ"
                samples: dict[str, list[float]] = {"hours": [], "sessions": []}
                for _ in range(runs):
                    for name, read in (("hours", web_reads.peak_week), ("sessions", sessions_path)):
                        started = time.perf_counter()
                        await read(conn, query)
                        samples[name].append((time.perf_counter() - started) * 1000)
                print(f"  {days} days {tz:<13} " + "  ".join(
                    f"{name}: median {statistics.median(s):.1f} min {min(s):.1f}" for name, s in samples.items())
                    + f"  (visitors summed over cells: hourly {sum(c.visitors for c in new):,}, "
                    f"per cell {sum(int(r[2]) for r in old):,})", flush=True)


def ensure_loaded(url: str, data_dir: Path, events: int, users: int, now: datetime) -> None:
    """Generate, load and aggregate the events unless ``data_dir`` holds them already (for this day)."""
    stamp = data_dir / "loaded.txt"
    expected = f"{events} {users} {now.date()} signup-sites"
    if not stamp.exists() or stamp.read_text() != expected or _count(url) == 0:
        _sql(url, "TRUNCATE np_analytics_events, np_analytics_aggregates, np_analytics_aggregate_dirty, "
                  "np_analytics_web_sessions, np_analytics_web_daily, np_analytics_web_day_stats, "
                  "np_analytics_web_day_sessions, np_analytics_web_session_events, np_analytics_web_hour_stats")
        started = time.perf_counter()
        rows = with_web_fields(generate_events(events, users, 90, seed=1, now=now), seed=1)
        loaded = load_events(url, rows, columns=WEB_COLUMNS)
        _sql(url, FACTS)
        print(f"loaded {loaded:,} events in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        hours = asyncio.run(materialize_all(url))
        _sql(url, "ANALYZE")
        print(f"aggregated {hours:,} dirty hours in {time.perf_counter() - started:.1f} s", flush=True)
        stamp.write_text(expected)
    _count(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate (default 1,000,000)")
    parser.add_argument("--users", type=int, default=30_000, help="users of the generated events")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per read and filter (the median is shown)")
    parser.add_argument("--days", type=int, default=30, help="the range of every read, ending now")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/nself-analytics-filtered"),
                        help="the embedded PostgreSQL's directory (the data is kept and reused between runs)")
    parser.add_argument("--heat-map", action="store_true",
                        help="time only the unfiltered peak-hours/week: per-hour rows against the session path")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(args.data_dir)
    url = server.start()
    try:
        apply_migrations(url)
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        ensure_loaded(url, args.data_dir, args.events, args.users, now)
        load = os.getloadavg()
        print(f"load average before the reads: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
        if args.heat_map:
            asyncio.run(heat_map(url, now, args.runs))
            print("load average after the reads: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
            return
        base = WebQuery(site="example.com", start=now - timedelta(days=args.days), end=now + timedelta(minutes=30),
                        limit=10)
        print(f"median of {args.runs} runs, ms, {args.days} days ending now:", flush=True)
        results = asyncio.run(time_reads(url, base, args.runs))
        load = os.getloadavg()
        print(f"load average after the reads: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n", flush=True)
        print(table(results))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
