"""The aggregator's per-session update of the per-day web rows (store/rollups/web_hours.py, web_day_stats.py) leaves
exactly the rows a rebuild of whole days writes: after late page views that grow sessions, start new ones, make a
session span midnight, give a session a second bot flag or a smaller visitor id, and after raw rows deleted."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from nself_analytics.store.rollups import web_daily
from nself_analytics.store.rollups.aggregates import materialize
from nself_analytics.store.rollups.web_hours import MAX_HOURS
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL

from .test_web_stats import DAY0, SITE, make_hits, store

TABLES = {
    "np_analytics_web_daily": "site, day, is_bot, code, value, views, sessions, bounces, round(seconds::numeric, 3), "
                              "sviews",
    "np_analytics_web_day_stats": "site, day, is_bot, visitors, encode(sketch, 'hex'), ms, n, bn, bpos",
    "np_analytics_web_day_sessions": "site, day, is_bot, session_id, visitor, entry, exit, views, "
                                     "round(seconds::numeric, 3), attrs::text, pages, pcnts, hpages, hcnts",
}


async def snapshot(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    async with conn.cursor() as cur:
        for table, columns in TABLES.items():
            await cur.execute(f"SELECT {columns} FROM {table} ORDER BY {columns}")
            out[table] = list(await cur.fetchall())
    return out


async def rebuilt(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    """The rows a whole-day rebuild of every day writes (in a transaction rolled back afterwards)."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT DISTINCT source_account_id, (hour AT TIME ZONE 'UTC')::date FROM "
                          "np_analytics_web_sessions")
        days = json.dumps([{"source_account_id": a, "day": d.isoformat()} for a, d in await cur.fetchall()])
        await cur.execute("BEGIN")
        try:
            for sql in (web_daily.DELETE_DAILY, web_daily.INSERT_DAILY, web_daily.DELETE_DAY_STATS,
                        web_daily.INSERT_DAY_STATS, web_daily.DELETE_DAY_SESSIONS, web_daily.INSERT_DAY_SESSIONS):
                await cur.execute(sql, {"days": days})
            return await snapshot(conn)
        finally:
            await cur.execute("ROLLBACK")


async def claim_each(conn: Any) -> int:
    """Materialize in claims of at most MAX_HOURS hours (the per-session path); return the claims."""
    claims = 0
    while await materialize(conn, retention_days=36500, limit=MAX_HOURS):
        claims += 1
    return claims


def late(hits: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Late page views: more of existing sessions (some past midnight, one with the bot flag flipped, one from a
    visitor id sorting first), and new sessions."""
    out: list[dict[str, Any]] = []
    views = [h for h in hits if h["event"] == "$pageview"]
    for h in rng.sample(views, 12):
        out.append({**h, "message_id": str(uuid.uuid4()),
                    "ts": (datetime.fromisoformat(h["ts"]) + timedelta(seconds=rng.randrange(1, 900))).isoformat()})
    for h in rng.sample([v for v in views if v["session_id"]], 3):  # the next UTC day: the session spans days
        ts = datetime.fromisoformat(h["ts"])
        midnight = ts.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        out.append({**h, "message_id": str(uuid.uuid4()), "ts": (midnight + timedelta(minutes=5)).isoformat()})
    flipped = rng.choice([v for v in views if v["session_id"]])
    out.append({**flipped, "message_id": str(uuid.uuid4()), "is_bot": not flipped["is_bot"],
                "ts": (datetime.fromisoformat(flipped["ts"]) + timedelta(seconds=5)).isoformat()})
    first = rng.choice([v for v in views if v["session_id"]])
    out.append({**first, "message_id": str(uuid.uuid4()), "user_id": None, "anonymous_id": "!first",
                "ts": (datetime.fromisoformat(first["ts"]) + timedelta(seconds=7)).isoformat()})
    for n in range(6):
        ts = DAY0 + timedelta(days=rng.randrange(10), seconds=rng.randrange(86_400))
        out.append({**rng.choice(views), "message_id": str(uuid.uuid4()), "session_id": f"late{n}",
                    "ts": ts.isoformat(), "is_bot": False})
    return out


async def test_per_session_updates_leave_the_rows_of_a_whole_day_rebuild(client: Any) -> None:
    hits = make_hits(seed=5, sessions=160)
    await store(client, hits)
    rng = random.Random(3)
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn:
        assert await claim_each(conn) > 1
        first = await snapshot(conn)
        assert first == await rebuilt(conn)
        assert len(first["np_analytics_web_day_sessions"]) > 50
        for round_ in range(3):
            extra = late(hits, rng)
            await store(client, extra)
            hits += extra
            assert await claim_each(conn) >= 1
            now = await snapshot(conn)
            assert now == await rebuilt(conn), round_
            assert now != first
        # raw rows deleted, then late rows of the same hours: the fragments of those hours lose the deleted views
        async with conn.cursor() as cur:
            await cur.execute("DELETE FROM np_analytics_events WHERE site = %s AND ts < %s",
                              (SITE, DAY0 + timedelta(days=3)))
        extra = late(hits, rng)
        await store(client, extra)
        assert await claim_each(conn) >= 1
        assert await snapshot(conn) == await rebuilt(conn)
