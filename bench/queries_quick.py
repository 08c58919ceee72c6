"""Quick timing of the read queries at 1,000,000 events on an embedded PostgreSQL.

    .venv/bin/python -m bench.queries_quick [--events 1000000] [--users 30000] [--runs 5]

Generates the events with bench.generate (90 days, ~20 event names), COPYs them into a PostgreSQL
of its own under --data-dir (kept between runs: the data is loaded once), materializes the
aggregates, then runs each query through the same store functions the HTTP handlers call and
prints the median of --runs runs (after one warm-up run).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiopg
import psycopg2

from nself_analytics.host.embedded import EmbeddedPostgres
from nself_analytics.host.migrate import apply_migrations
from nself_analytics.store.funnels import run_funnel
from nself_analytics.store.metrics import event_counts, session_totals
from nself_analytics.store.retention import run_retention
from nself_analytics.store.rollups.aggregates import materialize
from nself_analytics.web.params import add_periods, midnight, period_floor

from .generate import generate_events, load_events

Query = Callable[[aiopg.Connection], Awaitable[Any]]


def _count(url: str) -> int:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM np_analytics_events")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def queries(today: datetime) -> dict[str, Query]:
    """The timed queries, over the generated data's 90 days ending ``today`` (midnight UTC)."""
    end = today + timedelta(days=1)
    d90, d30 = end - timedelta(days=90), end - timedelta(days=30)
    acct = "primary"

    def retention(start: datetime, period: str, periods: int, start_event: str | None = None) -> Query:
        last = period_floor(today.date(), period)
        return lambda c: run_retention(
            c, account=acct, start=start, end=end, period=period, periods=periods,
            horizon=midnight(add_periods(last, period, periods)),
            start_event=start_event, return_event=None)

    return {
        "funnel signup>activate>purchase 30d": lambda c: run_funnel(
            c, account=acct, steps=["signup", "activate", "purchase"], start=d30, end=end, window_seconds=7 * 86400),
        "funnel signup>activate>purchase 90d": lambda c: run_funnel(
            c, account=acct, steps=["signup", "activate", "purchase"], start=d90, end=end, window_seconds=7 * 86400),
        "funnel login>add_to_cart>checkout>purchase 90d": lambda c: run_funnel(
            c, account=acct, steps=["login", "add_to_cart", "checkout_started", "purchase"], start=d90, end=end,
            window_seconds=86400),
        "funnel page_view>add_to_cart>checkout>purchase 30d": lambda c: run_funnel(
            c, account=acct, steps=["page_view", "add_to_cart", "checkout_started", "purchase"], start=d30, end=end,
            window_seconds=7 * 86400),
        "funnel page_view>...>purchase 90d (worst case)": lambda c: run_funnel(
            c, account=acct, steps=["page_view", "add_to_cart", "checkout_started", "purchase"], start=d90, end=end,
            window_seconds=7 * 86400),
        "funnel signup>activate>purchase 90d by plan": lambda c: run_funnel(
            c, account=acct, steps=["signup", "activate", "purchase"], start=d90, end=end, window_seconds=7 * 86400,
            breakdown="plan"),
        "retention week x12, 90d, any event": retention(d90, "week", 12),
        "retention day x14, 30d, start=signup": retention(d30, "day", 14, "signup"),
        "retention month x3, 90d, any event": retention(d90, "month", 3),
        "metrics day 90d (aggregates)": lambda c: event_counts(
            c, account=acct, start=d90, end=end, group_by="day", user_id=None),
        "metrics week 90d, one user (raw)": lambda c: event_counts(
            c, account=acct, start=d90, end=end, group_by="week", user_id="user-1-0"),
        "sessions day 90d play/stop": lambda c: session_totals(
            c, account=acct, start=d90, end=end, group_by="day", start_event="play", stop_event="stop", user_id=None),
        "sessions week 90d, one user": lambda c: session_totals(
            c, account=acct, start=d90, end=end, group_by="week", start_event="play", stop_event="stop",
            user_id="user-1-0"),
    }


async def time_queries(url: str, today: datetime, runs: int) -> list[tuple[str, float, float]]:
    out = []
    async with aiopg.connect(url) as conn:
        for name, query in queries(today).items():
            await query(conn)  # warm-up: caches, plans
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                await query(conn)
                samples.append((time.perf_counter() - started) * 1000)
            out.append((name, statistics.median(samples), max(samples)))
            print(f"  {name:<52} {out[-1][1]:8.0f} ms (max {out[-1][2]:.0f})", flush=True)
    return out


async def materialize_all(url: str) -> int:
    async with aiopg.connect(url) as conn:
        total = 0
        while claimed := await materialize(conn, 36500):
            total += claimed
        return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/nself-analytics-queries-quick"))
    parser.add_argument("--keep-running", action="store_true", help="leave the PostgreSQL server running")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(args.data_dir)
    url = server.start()
    try:
        apply_migrations(url)
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        stamp = args.data_dir / "loaded.txt"
        expected = f"{args.events} {args.users} {today.date()}"
        if not stamp.exists() or stamp.read_text() != expected or _count(url) == 0:
            conn = psycopg2.connect(url)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("TRUNCATE np_analytics_events, np_analytics_aggregates, np_analytics_aggregate_dirty")
            conn.close()
            started = time.perf_counter()
            loaded = load_events(url, generate_events(args.events, args.users, 90, seed=1, now=today))
            print(f"loaded {loaded:,} events in {time.perf_counter() - started:.1f} s", flush=True)
            started = time.perf_counter()
            hours = asyncio.run(materialize_all(url))
            print(f"materialized {hours:,} dirty hours in {time.perf_counter() - started:.1f} s", flush=True)
            stamp.write_text(expected)
        print(f"{_count(url):,} events; median of {args.runs} runs:")
        asyncio.run(time_queries(url, today, args.runs))
    finally:
        if not args.keep_running:
            server.stop()


if __name__ == "__main__":
    main()
